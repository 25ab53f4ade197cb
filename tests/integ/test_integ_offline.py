"""The integration tests, run offline: each integ_*.py's assertion stack executed as CloudFormation and the
assertion handler would (tests/integ/cloudformation_offline.py) against local mode serving each deployment under
test with its own settings. The same calls, bodies, paths read, waves of concurrency, 4,096-byte response limit and
throttles as on AWS; what only an account can answer is named as AWS-only (cloudformation_offline.AWS_ONLY).

Each deployment gets its own local mode (its stack name names its metrics namespace, its key is its own), started
together to keep `make test` short."""

from __future__ import annotations

import importlib
import json
import re
import secrets
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import integ_tests_alpha as integ
from cloudformation_offline import AWS_ONLY, RESPONSE_LIMIT_BYTES, Deployment, OfflineStack

from deployment.settings import load_settings

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[0] / "local"))
from local_rig import LocalProcess  # noqa: E402

sys.path.insert(0, str(HERE / "probe"))
import index as probe  # noqa: E402

CDK_CONTEXT = json.loads((HERE.parents[1] / "cdk.json").read_text())["context"]
NAMESPACE = re.compile(r'"Namespace":\s*"([^"]+)"')


def scenarios(file_name: str) -> dict[str, list[str]]:
    """stack name -> its settings pairs, as the integ file deploys them."""
    module = importlib.import_module(file_name.removesuffix(".py"))
    if hasattr(module, "SCENARIOS"):
        return {f"IntegModelApi{mode.capitalize()}": pairs for mode, pairs in module.SCENARIOS.items()}
    return {"IntegModelApiDefault": []}


def start_local(tmp_path_factory, stack_name: str, pairs: list[str]) -> tuple[LocalProcess, str, Path]:
    folder = tmp_path_factory.mktemp(stack_name)
    key = secrets.token_hex(8)
    context = [arg for pair in [*pairs, f"stack_name={stack_name}"] for arg in ("-c", pair)]
    # One thread of torch each: five model servers start at once on two cores (measured: 18 s, against 49 s when
    # each takes every core).
    return LocalProcess(folder, "--api-key", key, *context, env={"OMP_NUM_THREADS": "1"}), key, folder


def deployment_of(process: LocalProcess, key: str, folder: Path, pairs: list[str]) -> Deployment:
    info = json.loads((folder / "ready.json").read_text())
    settings = load_settings(pairs)
    return Deployment(api_url=info["api_url"], key=key,
                      namespace_seen=lambda: set(NAMESPACE.findall(process.log_text())),
                      throttle_burst=settings.throttle_burst,
                      serverless={m.name: m.max_concurrency for m in settings.catalog if m.hosting == "serverless"})


INTEG_FILES = sorted(p.name for p in HERE.glob("integ_*.py"))


@pytest.fixture(scope="module")
def local_modes(tmp_path_factory):
    """stack name -> (its settings pairs, its local mode, key, folder): every deployment of every integ file, all
    started at once."""
    started = {name: (pairs, *start_local(tmp_path_factory, name, pairs))
               for file_name in INTEG_FILES for name, pairs in scenarios(file_name).items()}
    try:
        for _, process, _, _ in started.values():
            process.wait_until_serving()
        yield started
    finally:
        for _, process, _, _ in started.values():
            process.stop()


@pytest.fixture(scope="module")
def offline_runs(local_modes, tmp_path_factory):
    """file name -> its OfflineStack, run."""
    runs = {}
    for file_name in INTEG_FILES:
        deployments = {name: deployment_of(process, key, folder, pairs)
                       for name, (pairs, process, key, folder) in local_modes.items() if name in scenarios(file_name)}
        app = cdk.App(outdir=str(tmp_path_factory.mktemp("assembly")), context=CDK_CONTEXT)
        importlib.import_module(file_name.removesuffix(".py")).build(app)
        assembly = app.synth()
        integ_json = json.loads(Path(assembly.directory, "integ.json").read_text())
        case, = integ_json["testCases"].values()
        stack = OfflineStack(assembly.get_stack_artifact(case["assertionStackName"]).template, deployments,
                             probe.handler)
        stack.run()
        runs[file_name] = stack
    return runs


@pytest.mark.parametrize("file_name", INTEG_FILES)
def test_every_assertion_passes_against_local_mode_within_cloudformations_limits(offline_runs, file_name):
    stack = offline_runs[file_name]
    failed = [f"{o.logical_id} ({o.kind}): {o.detail}" for o in stack.outcomes if not o.passed]
    assert failed == []
    too_big = [f"{o.logical_id}: {o.response_bytes} bytes" for o in stack.outcomes
               if o.response_bytes > RESPONSE_LIMIT_BYTES]
    assert too_big == []
    assert stack.concurrency_problems() == []
    kinds = {o.kind for o in stack.outcomes}
    assert "probe" in kinds and kinds <= {"probe", "aws", "aws-only", "assertion"}
    # What only an account can answer says so, each by its reason.
    assert {o.detail for o in stack.outcomes if o.kind == "aws-only"} <= set(AWS_ONLY.values())


def test_the_probe_calls_reach_every_deployment_and_read_what_later_calls_use(offline_runs):
    stack = offline_runs["integ_hosting_modes.py"]
    probes = [o for o in stack.outcomes if o.kind == "probe"]
    async_reads = [o.data["apiCallResponse.Payload.job"] for o in probes if "apiCallResponse.Payload.job" in o.data]
    assert async_reads and all(re.fullmatch(r"[0-9a-f]{32}", job) for job in async_reads)
    urls = [o.data["apiCallResponse.Payload.url"] for o in probes if "apiCallResponse.Payload.url" in o.data]
    assert urls and all("X-Amz-Signature=" in url for url in urls)


# ------------------------------------------------------------------ the runner bites (what it would catch)


@pytest.fixture(scope="module")
def embeddings_local(local_modes):
    """The serverless scenario's local mode (MiniLM): what the runner's own checks are shown on."""
    _, process, key, folder = local_modes["IntegModelApiServerless"]
    return process, key, folder


def _stack_with(build) -> dict:
    """The assertion stack's template of a one-case IntegTest whose assertions build(assertions, its stack) makes."""
    app = cdk.App(context=CDK_CONTEXT)
    under_test = cdk.Stack(app, "Probe")
    test = integ.IntegTest(app, "Case", test_cases=[under_test])
    assert_stack = next(c for c in test.node.find_all() if cdk.Stack.is_stack(c) and c is not under_test)
    build(test.assertions, assert_stack)
    return app.synth().get_stack_artifact(assert_stack.artifact_id).template


def test_a_whole_http_answer_over_4096_bytes_is_caught(embeddings_local):
    """What make integ did before the probe: integ-tests-alpha's HttpApiCall sends the whole answer to
    CloudFormation; two embedding vectors are far over its limit."""
    process, key, folder = embeddings_local
    url = json.loads((folder / "ready.json").read_text())["api_url"]
    template = _stack_with(lambda assertions, _: assertions.http_api_call(
        url + "/models/minilm-embeddings", method="POST", headers={"x-api-key": key, "Content-Type":
                                                                   "application/json"},
        body=json.dumps({"inputs": ["a", "b"]})).expect(integ.ExpectedResult.object_like({"status": 200})))
    stack = OfflineStack(template, {}, probe.handler)
    outcome, = stack.run()
    assert outcome.passed and outcome.response_bytes > RESPONSE_LIMIT_BYTES


def test_calls_with_no_dependency_between_them_start_together_and_are_counted(embeddings_local):
    process, key, folder = embeddings_local
    deployment = deployment_of(process, key, folder, ["models=minilm-embeddings", "hosting=serverless",
                                                      "max_concurrency=1"])
    base = "https://<import:Probe:Url>.execute-api.us-east-1.amazonaws.com/<import:Probe:Stage>"
    events = [{"method": "POST", "url": f"{base}/models/minilm-embeddings", "headers": {"x-api-key": key},
               "body": json.dumps({"inputs": ["a"]}), "expect": {"status": 200}} for _ in range(2)]

    def build(assertions, _):
        for event in events:
            assertions.invoke_function(function_name="probe", payload=json.dumps(event))

    stack = OfflineStack(_stack_with(build), {"Probe": deployment}, probe.handler)
    problems = stack.concurrency_problems()  # wave 2: after the handler's role and function
    assert problems == ["wave 2: 2 calls to serverless minilm-embeddings of Probe at once, over its max_concurrency 1"]


def test_a_payload_the_handler_cannot_parse_is_caught():
    """Stack.to_json_string's Fn::Join counts as JSON already and reaches the handler unescaped: the parameter then
    stays text that Lambda refuses. tests/integ/deployed_api.probe_payload passes the JSON text instead."""
    def build(assertions, stack):
        assertions.invoke_function(function_name="probe", payload=stack.to_json_string(
            {"url": cdk.Fn.join("", ["https://", cdk.Aws.URL_SUFFIX])}))

    template = _stack_with(build)
    stack = OfflineStack(template, {}, lambda event: {"check": "ok"})
    with pytest.raises(AssertionError, match="Lambda refuses a Payload that is not JSON"):
        stack.run()
