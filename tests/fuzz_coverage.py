"""The driver both fuzz tests share: run generated inputs plus known ones through a check, and give back the
statuses of each, so a test checks in itself (not in a test before it) that both outcomes were covered."""

from __future__ import annotations

from typing import Callable, Sequence

from hypothesis import HealthCheck, example, given, seed, settings

SEED = 20261122


def fuzz(strategy, known: Sequence[dict], call: Callable[[dict], int], examples: int) -> tuple[list, list]:
    """(statuses of the known inputs, statuses of the generated ones). A fixed seed and no example database: the
    same generated inputs every run, on every machine and checkout, so the checks over them cannot flicker."""
    known_statuses, generated = [], []

    @seed(SEED)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(value=strategy)
    def check(value):
        (known_statuses if value in known else generated).append(call(value))

    for value in known:
        check = example(value=value)(check)
    check()
    # The generator explored: most runs were generated ones, with more than one outcome among them.
    assert len(generated) >= examples // 2 and len(set(generated)) >= 2, sorted(set(generated))
    return known_statuses, generated
