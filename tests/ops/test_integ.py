"""make integ (ops/integ.py): integ-runner's deploy / assert / destroy workflow over the pinned CDK CLI, driven here
by a stand-in CLI (no AWS): the order of the commands, how assertion outputs are read, and that stacks are destroyed
whatever happened."""

import json
from pathlib import Path

import pytest

from ops import integ

CASE = {"stacks": ["IntegModelApiDefault"], "assertionStack": "Default/DefaultTest/DeployAssert",
        "assertionStackName": "DefaultDefaultTestDeployAssertABCD"}


class FakeCdk:
    """Answers like the CDK CLI: synth writes integ.json; the assertion stack's deploy writes its outputs file."""

    def __init__(self, out_dir: Path, results=None, fail=()):
        self.out_dir, self.calls, self.fail = out_dir, [], set(fail)
        self.results = {"AssertionResultsHttpApiCall1": {"status": "success"}} if results is None else results

    def __call__(self, args):
        args = list(args)
        self.calls.append(args)
        verb = args[0]
        if verb == "synth":
            out = Path(args[args.index("--output") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "integ.json").write_text(json.dumps({"version": "55.0.0", "testCases": {"Default/DefaultTest": CASE}}))
        if verb == "deploy" and "--outputs-file" in args:
            outputs = {key: json.dumps(value) for key, value in self.results.items()}
            Path(args[args.index("--outputs-file") + 1]).write_text(
                json.dumps({CASE["assertionStackName"]: {**outputs, "SomethingElse": "x"}}))
        if verb == "deploy" and CASE["assertionStack"] in args and "assertions" in self.fail:
            return 1
        return 1 if verb in self.fail else 0

    def verbs(self):
        return [(c[0], [a for a in c if a in (*CASE["stacks"], CASE["assertionStack"])]) for c in self.calls]


def test_deploys_the_stacks_then_the_assertions_then_destroys_both(tmp_path):
    cdk = FakeCdk(tmp_path)
    [outcome] = integ.run_test("integ_default.py", cdk, tmp_path)
    assert outcome.ok and outcome.results == {"AssertionResultsHttpApiCall1": {"status": "success"}}
    assert cdk.verbs() == [("synth", []), ("deploy", ["IntegModelApiDefault"]),
                           ("deploy", ["Default/DefaultTest/DeployAssert"]),
                           ("destroy", ["Default/DefaultTest/DeployAssert", "IntegModelApiDefault"])]
    assertion_deploy = cdk.calls[2]
    assert "--no-rollback" in assertion_deploy and "--require-approval" in assertion_deploy
    assert all(c[c.index("--app") + 1] == str(tmp_path / "integ_default") for c in cdk.calls[1:])
    assert not (tmp_path / "integ_default" / "assertion-results.json").exists()  # deploy-time values not kept


def test_a_failed_assertion_fails_the_test_with_its_message(tmp_path):
    cdk = FakeCdk(tmp_path, results={"AssertionResultsA": {"status": "success"},
                                     "AssertionResultsB": {"status": "fail", "message": "expected 200\ngot 502"}})
    outcomes = integ.run_test("integ_default.py", cdk, tmp_path)
    assert not outcomes[0].ok
    text = integ.report(outcomes)
    assert text.startswith("FAIL  integ_default.py Default/DefaultTest")
    assert "AssertionResultsB: expected 200\ngot 502" in text and "1/2 assertions passed" in text
    assert cdk.verbs()[-1][0] == "destroy"


@pytest.mark.parametrize("fail, error", [("deploy", "deploying IntegModelApiDefault failed"),
                                         ("assertions", "deploying the assertions failed")])
def test_a_failed_deploy_still_destroys_everything(tmp_path, fail, error):
    cdk = FakeCdk(tmp_path, fail=[fail])
    [outcome] = integ.run_test("integ_default.py", cdk, tmp_path)
    assert not outcome.ok and outcome.error == error
    assert cdk.verbs()[-1] == ("destroy", ["Default/DefaultTest/DeployAssert", "IntegModelApiDefault"])


def test_no_assertion_results_is_a_failure_and_a_failed_destroy_is_said(tmp_path):
    cdk = FakeCdk(tmp_path, results={}, fail=["destroy"])
    [outcome] = integ.run_test("integ_default.py", cdk, tmp_path)
    assert not outcome.ok
    assert outcome.error.startswith("no assertion results; destroying Default/DefaultTest/DeployAssert, "
                                    "IntegModelApiDefault failed")


def test_no_clean_keeps_the_stacks(tmp_path):
    cdk = FakeCdk(tmp_path)
    assert integ.run_test("integ_default.py", cdk, tmp_path, clean=False)[0].ok
    assert "destroy" not in [c[0] for c in cdk.calls]


def test_unreadable_outputs_are_a_failure(tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"S": {"AssertionResultsX": "{not json"}}))
    assert integ.assertion_results(outputs, "S")["S"]["status"] == "fail"
    assert integ.assertion_results(tmp_path / "missing.json", "S") == {}


def test_main_runs_the_named_tests_and_refuses_unknown_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(integ, "OUT_DIR", tmp_path)
    cdk = FakeCdk(tmp_path)
    assert integ.main(["integ_default.py"], cdk=cdk, ready=lambda out: True) == 0
    assert "PASS  integ_default.py Default/DefaultTest" in capsys.readouterr().out
    assert integ.main(["integ_nope.py"], cdk=cdk, ready=lambda out: True) == 2
    assert "unknown integration tests ['integ_nope.py']" in capsys.readouterr().out
    assert integ.main(["integ_default.py"], cdk=FakeCdk(tmp_path, fail=["deploy"]), ready=lambda out: True) == 1
