"""The driver both fuzz tests share: run generated inputs plus known ones through a check, then prove the
generator itself reached both outcomes (success and a client error) in this one test, not in a test before it."""

from __future__ import annotations

from typing import Callable, Sequence

from hypothesis import HealthCheck, example, given, settings


def fuzz(strategy, known: Sequence[dict], call: Callable[[dict], int], examples: int) -> tuple[list, list]:
    """(statuses of the known inputs, statuses of the generated ones). derandomize: the same generated inputs
    every run, so a coverage check over them cannot flicker."""
    known_statuses, generated = [], []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(value=strategy)
    def check(value):
        (known_statuses if value in known else generated).append(call(value))

    for value in known:
        check = example(value=value)(check)
    check()
    assert len(generated) >= examples // 2 and 200 in generated and any(400 <= s < 500 for s in generated), \
        sorted(set(generated))
    return known_statuses, generated
