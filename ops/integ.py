"""`make integ`: the integration tests (tests/integ/integ_*.py) in your AWS account: deploy, assert, destroy.

    python -m ops.integ                              # every tests/integ/integ_*.py
    python -m ops.integ integ_default.py --no-clean  # one; keep its stacks to look at them (destroy them later)

Each test is a CDK app with one aws-cdk.integ-tests-alpha IntegTest: its stacks under test, and a DeployAssert stack
whose custom resources call the deployed API and AWS and report each assertion as an `AssertionResults...` output.
This runs @aws-cdk/integ-runner's workflow with the project's pinned CDK CLI: synthesize the app; deploy the test
case's stacks; deploy its assertion stack without rollback (every assertion runs, a failed one does not stop the
others) writing its outputs to a file; read each AssertionResults output's {"status": "success" | "fail",
"message"}; destroy the assertion stack and the stacks (also after a failure), unless --no-clean. Exit 1 if a deploy
or an assertion fails.

integ-runner itself cannot run these yet: its newest release (2.197.10, April 2026) reads cloud assembly schema 53 at
most and aws-cdk-lib 2.275 writes 55. The snapshots it would check are checked offline by
tests/integ/test_integ_snapshots.py. Cost: the default test runs a GPU endpoint for the ~15 minutes it takes
(`make cost`); the hosting modes test four deployments, one with a GPU endpoint that scales from zero.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from ops.cdk import cli as cdk_cli

ROOT = Path(__file__).resolve().parents[1]
INTEG_DIR = ROOT / "tests" / "integ"
OUT_DIR = ROOT / "cdk.out" / "integ"
RESULT_PREFIX = "AssertionResults"

# (CDK CLI arguments) -> exit status; the real one runs the pinned CLI with the integ apps' import path.
Cdk = Callable[[Sequence[str]], int]


@dataclass(frozen=True)
class TestCase:
    name: str
    stacks: tuple[str, ...]  # the stacks under test (artifact ids = stack names)
    assertion_stack: Optional[str]  # its construct path, as the CLI selects it
    assertion_stack_name: Optional[str]  # its stack name, as the outputs file keys it


@dataclass
class Outcome:
    test: str
    deployed: bool = False
    results: dict[str, dict] = field(default_factory=dict)  # AssertionResults id -> {status, message}
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.deployed and not self.error and bool(self.results) and all(
            r.get("status") == "success" for r in self.results.values())


def test_cases(assembly_dir: Path) -> list[TestCase]:
    """The test cases of a synthesized integ app (its integ.json, written by IntegTest)."""
    manifest = json.loads((assembly_dir / "integ.json").read_text())
    return [TestCase(name, tuple(case["stacks"]), case.get("assertionStack"), case.get("assertionStackName"))
            for name, case in manifest["testCases"].items()]


def assertion_results(outputs_file: Path, assertion_stack_name: str) -> dict[str, dict]:
    """integ-runner's reading of the outputs file: each AssertionResults output of the assertion stack whose JSON
    value has status success or fail. Unreadable outputs are a failure of their own."""
    if not outputs_file.exists():
        return {}
    try:
        outputs = json.loads(outputs_file.read_text()).get(assertion_stack_name, {})
        results = {}
        for key, value in outputs.items():
            if key.startswith(RESULT_PREFIX):
                result = json.loads(value.replace("\n", "\\n"))
                if result.get("status") in ("success", "fail"):
                    results[key] = result
        return results
    except (ValueError, AttributeError) as error:
        return {assertion_stack_name: {"status": "fail", "message": f"error processing assertion results: {error}"}}


def run_test(file_name: str, cdk: Cdk, out_dir: Path, clean: bool = True) -> list[Outcome]:
    assembly = out_dir / file_name.removesuffix(".py")
    app = f"python {shlex.quote(str(INTEG_DIR / file_name))}"
    if cdk(["synth", "--quiet", "--app", app, "--output", str(assembly)]) != 0:
        return [Outcome(file_name, error="synth failed")]
    outcomes = []
    for case in test_cases(assembly):
        outcome = Outcome(f"{file_name} {case.name}")
        outcomes.append(outcome)
        deploy = ["deploy", "--app", str(assembly), "--require-approval", "never"]
        outputs = assembly / "assertion-results.json"
        try:
            if cdk([*deploy, *case.stacks]) != 0:
                outcome.error = f"deploying {', '.join(case.stacks)} failed"
                continue
            outcome.deployed = True
            if case.assertion_stack:
                # No rollback: every assertion runs and reports, a failed one does not undo the others.
                status = cdk([*deploy, "--no-rollback", "--outputs-file", str(outputs), case.assertion_stack])
                outcome.results = assertion_results(outputs, case.assertion_stack_name or "")
                if status != 0:
                    outcome.error = "deploying the assertions failed"
            if not outcome.results and not outcome.error:
                outcome.error = "no assertion results"
        finally:
            outputs.unlink(missing_ok=True)  # deploy-time values (the key, URLs): never kept
            if clean:
                stacks = [*([case.assertion_stack] if case.assertion_stack else []), *case.stacks]
                if cdk(["destroy", "--app", str(assembly), "--force", *stacks]) != 0:
                    outcome.error = (outcome.error + "; " if outcome.error else "") + \
                        f"destroying {', '.join(stacks)} failed: run cdk destroy --app {assembly} --force " \
                        f"{' '.join(stacks)} again, or delete what is left in the CloudFormation console"
    return outcomes


def report(outcomes: Sequence[Outcome]) -> str:
    lines = []
    for outcome in outcomes:
        lines.append(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.test}" + (f": {outcome.error}" if outcome.error
                                                                                 else ""))
        for key, result in sorted(outcome.results.items()):
            if result.get("status") != "success":
                lines.append(f"      {key}: {result.get('message', '')}")
        passed = sum(r.get("status") == "success" for r in outcome.results.values())
        lines.append(f"      {passed}/{len(outcome.results)} assertions passed")
    return "\n".join(lines)


def pinned_cdk(args: Sequence[str]) -> int:
    """The pinned CDK CLI (node_modules/.bin via the Makefile's PATH); the integ apps import stacks/ from the root
    and their shared assertions (deployed_api.py) from their own folder."""
    command = cdk_cli() + list(args)
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.call(command, cwd=ROOT, env=environ)


def account_ready(out) -> bool:
    """AWS can be called (a region, credentials STS accepts), checked before anything is synthesized or deployed:
    without them every deploy would fail and there would be nothing to destroy."""
    from ops import cdk

    return cdk.checked_session(None, "make integ", out) is not None


def main(argv=None, cdk: Cdk = pinned_cdk, out=None, ready: Callable = account_ready) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="make integ", description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", nargs="*", help="integ_*.py files of tests/integ (default: all)")
    parser.add_argument("--no-clean", dest="clean", action="store_false",
                        help="keep the deployed stacks (destroy them yourself: cdk destroy --app cdk.out/integ/<test>)")
    args = parser.parse_args(argv)
    known = sorted(p.name for p in INTEG_DIR.glob("integ_*.py"))
    unknown = [t for t in args.tests if t not in known]
    if unknown:
        print(f"unknown integration tests {unknown}; there are {known}", file=out)
        return 2
    if not ready(out):
        return 2
    outcomes = [o for name in (args.tests or known) for o in run_test(name, cdk, OUT_DIR, args.clean)]
    print(report(outcomes), file=out)
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
