"""The integration tests' snapshots, checked offline (what `integ-runner` does without deploying): each
tests/integ/integ_*.py is synthesized and compared with its integ_<name>.py.snapshot/ directory: integ.json (the test
cases, their stacks and assertion stacks) and each assertion stack's template (what is called and what is
expected). The stacks under test are the product's own (ModelApiStack; their templates are reviewed in
tests/stacks/snapshots/templates), so their templates are not stored twice. `make snapshots` rewrites the files.

Why not `integ-runner` itself: its newest release (@aws-cdk/integ-runner 2.197.10, April 2026) reads cloud assembly
schema 53 at most and aws-cdk-lib 2.275 writes 55 ("Cloud assembly schema version mismatch: Maximum schema version
supported is 53.x.x, but found 55.0.0"), for the snapshot check and for deploying alike. `make integ` (ops/integ.py)
runs integ-runner's deploy workflow with the pinned CDK CLI instead; the snapshots keep integ-runner's layout.
"""

import importlib
import json
import os
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from cloudformation_offline import OfflineStack
from integ_hosting_modes import SCENARIOS
from model_api import routes as _routes

from deployment.hosting import HOSTING_MODES
from deployment.settings import load_settings

HERE = Path(__file__).parent
INTEG_FILES = sorted(p.name for p in HERE.glob("integ_*.py"))
CDK_CONTEXT = json.loads((HERE.parents[1] / "cdk.json").read_text())["context"]
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
# Each assertion's custom resource carries the synth time as a salt, so that it runs again on every deploy.
SALT = re.compile(r'"salt": "\d+"')
# An equality assertion's output is named by a hash of its actual value's token, which numbers tokens in the order
# the process made them (integ-tests-alpha assertions.js: md5hash({actual, expected})).
# The API path of a probe call's URL, after the deployment's base URL (as cloudformation_offline renders it).
API_PATH = re.compile(r"https://<import:[^>]+>\.execute-api\.[^/]+/<import:[^>]+>(/[^\"]*)")
TOKEN_HASH = re.compile(r"(AssertionResultsEqualsAssertion\w+?Status\d+)[0-9a-f]{32}")


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory):
    cache = {}

    def _synth(file_name: str):
        if file_name not in cache:
            # cdk.json's context (its feature flags), as `cdk synth --app ...` in ops/integ.py applies it
            app = cdk.App(outdir=str(tmp_path_factory.mktemp(file_name.replace(".", "-"))), context=CDK_CONTEXT)
            importlib.import_module(file_name.removesuffix(".py")).build(app)
            cache[file_name] = app.synth()
        return cache[file_name]

    return _synth


def snapshot_files(assembly) -> dict[str, str]:
    """file name -> its text: integ.json and the assertion stacks' templates, asset hashes normalized."""
    integ_json = json.loads(Path(assembly.directory, "integ.json").read_text())
    files = {"integ.json": json.dumps(integ_json, indent=1, sort_keys=True) + "\n"}
    for case in integ_json["testCases"].values():
        name = case["assertionStackName"]
        template = assembly.get_stack_artifact(name).template
        text = json.dumps(template, indent=1, sort_keys=True)
        text = SALT.sub('"salt": "<synth-time>"', ASSET_HASH.sub("<asset-hash>", text))
        files[f"{name}.template.json"] = TOKEN_HASH.sub(r"\1<token-hash>", text) + "\n"
    return files


@pytest.mark.parametrize("file_name", INTEG_FILES)
def test_snapshot_is_up_to_date(file_name, assemblies):
    directory = HERE / f"{file_name}.snapshot"
    files = snapshot_files(assemblies(file_name))
    if UPDATE:
        directory.mkdir(exist_ok=True)
        for stale in set(p.name for p in directory.iterdir()) - set(files):
            (directory / stale).unlink()
        for name, text in files.items():
            (directory / name).write_text(text)
    stored = {p.name: p.read_text() for p in directory.iterdir()} if directory.is_dir() else {}
    assert sorted(stored) == sorted(files), f"{directory.name}: run `make snapshots` and review git diff"
    for name, text in files.items():
        assert stored[name] == text, f"{directory.name}/{name} differs: run `make snapshots` and review git diff"


def test_every_hosting_mode_has_a_deployed_scenario():
    assert sorted(SCENARIOS) == sorted(HOSTING_MODES), \
        "tests/integ/integ_hosting_modes.py SCENARIOS needs one deployment per registered hosting mode"
    for mode, pairs in SCENARIOS.items():
        assert {m.hosting for m in load_settings(pairs).catalog} == {mode}, mode


def http_calls(assembly, integ_json: dict) -> list[tuple[str, dict]]:
    """(the API path called, or "" for a URL from an answer; what the probe is told to expect) of every HTTP
    call (each goes through the probe: tests/integ/probe/index.py)."""
    out = []
    for case in integ_json["testCases"].values():
        template = assembly.get_stack_artifact(case["assertionStackName"]).template
        offline = OfflineStack(template, {}, probe=None)
        for logical_id in template["Resources"]:
            event = offline._static_probe_event(logical_id)
            if event is not None:
                found = API_PATH.match(event["url"])
                out.append((found.group(1).split("?")[0] if found else "", event["expect"]))
    return out


def deployed_models(assembly, stack_name: str) -> list:
    """The models a stack under test deploys, read back from its Lambdas' MODEL_CATALOG."""
    for resource in assembly.get_stack_artifact(stack_name).template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if resource["Type"] == "AWS::Lambda::Function" and "MODEL_CATALOG" in variables:
            return [_routes.ModelInfo(**m) for m in json.loads(variables["MODEL_CATALOG"])]
    raise AssertionError(f"{stack_name}: no function carries the catalog")


@pytest.mark.parametrize("file_name", INTEG_FILES)
def test_every_route_of_every_deployed_model_is_called(file_name, assemblies):
    assembly = assemblies(file_name)
    integ_json = json.loads(Path(assembly.directory, "integ.json").read_text())
    called = {path for path, _ in http_calls(assembly, integ_json)}
    for case in integ_json["testCases"].values():
        for stack_name in case["stacks"]:
            infos = deployed_models(assembly, stack_name)
            # A route with a path parameter is called at a path filled in: {model_id} with its own model's name.
            routes = {r.path.replace(_routes.MODEL_ID, "/" + r.model) for r in _routes.routes(infos)
                      if r.action not in ("catalog", "job")}
            assert routes - called == set(), f"{stack_name}: routes no assertion calls"


@pytest.mark.parametrize("file_name", INTEG_FILES)
def test_refusals_and_deployment_facts_are_asserted(file_name, assemblies):
    assembly = assemblies(file_name)
    integ_json = json.loads(Path(assembly.directory, "integ.json").read_text())
    statuses = [e["status"] for _, e in http_calls(assembly, integ_json)]
    cases = sum(len(case["stacks"]) for case in integ_json["testCases"].values())
    assert statuses.count(404) == cases and statuses.count(405) == cases
    assert sum(s in (401, 403) for s in statuses) >= cases  # no key (and, where images are stored, bad signatures)
    for case in integ_json["testCases"].values():
        types = [r["Type"] for r in assembly.get_stack_artifact(case["assertionStackName"]).template["Resources"]
                 .values()]
        stacks = len(case["stacks"])
        assert types.count("Custom::DeployAssert@SdkCallSageMakerdescribeEndpoint") >= stacks
        assert types.count("Custom::DeployAssert@SdkCallCloudWatchlistMetrics") >= stacks
        assert types.count("Custom::DeployAssert@SdkCallAPIGatewaygetAccount") >= 1


def test_the_assertion_constructs_are_the_release_of_the_cdk_library():
    """integ-tests-alpha is released with aws-cdk-lib, version for version (2.275.0 -> 2.275.0a0)."""
    from importlib.metadata import version

    assert version("aws-cdk.integ-tests-alpha").split("a")[0] == version("aws-cdk-lib")


@pytest.mark.parametrize("file_name", INTEG_FILES)
def test_every_call_asserts_one_path_and_keeps_only_what_it_reads(file_name, assemblies):
    """integ-tests-alpha flattens the answer of a call that is read or asserts at a path, and keeps its outputPaths
    only: every call asserts at a path (so its own assertion compares that value, never the flattened whole), keeps
    each attribute another resource reads, and no HttpApiCall (whose whole answer would go to CloudFormation) is
    left."""
    assembly = assemblies(file_name)
    integ_json = json.loads(Path(assembly.directory, "integ.json").read_text())
    for case in integ_json["testCases"].values():
        resources = assembly.get_stack_artifact(case["assertionStackName"]).template["Resources"]
        calls = {k: r["Properties"] for k, r in resources.items() if r["Type"].startswith("Custom::DeployAssert@")}
        assert not [k for k, r in resources.items() if r["Type"].startswith("Custom::DeployAssert@HttpCall")]
        for logical_id, properties in calls.items():
            assert properties["flattenResponse"] == "true" and properties["actualPath"] in properties["outputPaths"]
        for logical_id, attribute in {a for r in resources.values() for a in _get_atts(r.get("Properties", {}))}:
            if logical_id in calls:
                assert attribute.removeprefix("apiCallResponse.") in calls[logical_id]["outputPaths"], attribute


def _get_atts(value) -> list[tuple[str, str]]:
    """Every Fn::GetAtt [logical id, attribute] inside a template value."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return [tuple(value["Fn::GetAtt"])]
        return [a for v in value.values() for a in _get_atts(v)]
    if isinstance(value, list):
        return [a for v in value for a in _get_atts(v)]
    return []
