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
    """(the API path called, or "" for a URL from an answer; what is expected, {} where the call's answer is read
    and its status asserted apart) of every HTTP call."""
    out = []
    for case in integ_json["testCases"].values():
        for resource in assembly.get_stack_artifact(case["assertionStackName"]).template["Resources"].values():
            if resource["Type"] == "Custom::DeployAssert@HttpCall":
                url = resource["Properties"]["parameters"]["url"]
                last = url["Fn::Join"][1][-1] if isinstance(url, dict) and "Fn::Join" in url else ""
                path = last.split("?")[0] if isinstance(last, str) and last.startswith("/") else ""
                out.append((path, json.loads(resource["Properties"].get("expected") or "{}")))
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
            routes = {r.path for r in _routes.routes(infos) if r.action not in ("catalog", "job")}
            assert routes - called == set(), f"{stack_name}: routes no assertion calls"


@pytest.mark.parametrize("file_name", INTEG_FILES)
def test_refusals_and_deployment_facts_are_asserted(file_name, assemblies):
    assembly = assemblies(file_name)
    integ_json = json.loads(Path(assembly.directory, "integ.json").read_text())
    expected = [e for _, e in http_calls(assembly, integ_json) if e]
    statuses = [e["$ObjectLike"]["status"] for e in expected]
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
def test_a_call_whose_answer_is_read_has_its_status_asserted_apart(file_name, assemblies):
    """integ-tests-alpha flattens the answer of a call whose attributes are read, and then compares nothing in its
    own expect(): such calls carry no expected result, and an assertion of their status reads the attribute."""
    assembly = assemblies(file_name)
    integ_json = json.loads(Path(assembly.directory, "integ.json").read_text())
    for case in integ_json["testCases"].values():
        resources = assembly.get_stack_artifact(case["assertionStackName"]).template["Resources"]
        read = {attribute[0] for resource in resources.values() for attribute in _get_atts(resource["Properties"])}
        status_checked = {attribute[0] for resource in resources.values()
                          if resource["Type"] == "Custom::DeployAssert@AssertEquals"
                          for attribute in _get_atts(resource["Properties"].get("actual"))
                          if attribute[1] == "apiCallResponse.status"}
        for logical_id in read:
            properties = resources[logical_id]["Properties"]
            if resources[logical_id]["Type"] == "Custom::DeployAssert@HttpCall":
                assert properties["flattenResponse"] == "true" and "expected" not in properties, logical_id
                assert logical_id in status_checked, logical_id


def _get_atts(value) -> list[tuple[str, str]]:
    """Every Fn::GetAtt [logical id, attribute] inside a template value."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return [tuple(value["Fn::GetAtt"])]
        return [a for v in value.values() for a in _get_atts(v)]
    if isinstance(value, list):
        return [a for v in value for a in _get_atts(v)]
    return []
