"""The OpenAPI document, fuzzed against local mode by a schema-driven fuzzer (schemathesis, every check on): the
document is exact for the deployment it describes. No generated request gets a server error, no request the
document allows is refused, no request it forbids is served, and every answer is one the document lists, in its
media type and schema.

One local mode serves an image model and every text kind, with limits so tight that a valid request is cheap (a
64 px one-step image, a few tokens): the fuzzer's hundreds of requests stay within seconds.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from local_rig import LocalProcess
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

API_KEY = "fuzz-key"
MODELS = "stable-diffusion,gpt2-tgi,minilm-embeddings,chat-embeddings,gpt2-cpu"
TIGHT = ["-c", f"models={MODELS}", "-c", "min_size=64", "-c", "max_size=64", "-c", "default_size=64",
         "-c", "max_steps=1", "-c", "default_steps=1", "-c", "max_images=1", "-c", "max_prompt_chars=64",
         "-c", "max_new_tokens=3", "-c", "default_max_new_tokens=2", "-c", "max_input_chars=64",
         "-c", "max_batch_inputs=2", "-c", "max_messages=2", "-c", "gpt2-tgi.streaming=true"]
# Per operation and generation mode (valid and invalid requests): about 15 s, as make test's time allows.
# FUZZ_EXAMPLES=80 runs a longer search by hand (about 2.5 minutes; it passes at 80 too).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("openapi-fuzz")
    process = LocalProcess(tmp_path, "--api-key", API_KEY, *TIGHT)
    process.wait_until_serving()
    info = json.loads((tmp_path / "ready.json").read_text())
    yield info
    output = "".join(process.stdout + process.stderr)
    assert process.stop() == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def test_every_generated_request_gets_an_answer_the_document_lists(served):
    """Each operation, with valid and with invalid requests (schemathesis' positive and negative modes), every check
    of schemathesis on: one list of what failed, with the request that showed it."""
    load_all_checks()
    all_checks = CHECKS.get_all()
    base_url = served["api_url"].rstrip("/")
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: dict[str, str] = {}
    calls = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def run(case):
                nonlocal calls
                calls += 1
                try:
                    case.call_and_validate(base_url=base_url, headers={"x-api-key": API_KEY}, timeout=60, checks=all_checks)
                except (Exception, BaseExceptionGroup) as error:  # every check's failure, kept with the request that showed it
                    where = f"{operation.method.upper()} {operation.path} ({mode.value})"
                    failures.setdefault(f"{where}: {type(error).__name__}: {str(error)[:600]}",
                                        case.as_curl_command({"x-api-key": API_KEY}))
            run()
    assert calls >= EXAMPLES * len(operations)  # every operation was exercised, in both modes together
    assert not failures, "\n\n".join(f"{what}\n  {curl[:400]}" for what, curl in failures.items())
