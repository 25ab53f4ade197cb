"""The README is the front door: it must stay true to the code."""

import re
from dataclasses import fields
from pathlib import Path

from stacks.model_catalog import OVERRIDABLE
from stacks.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented():
    table = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z0-9_]+)`", table))
    settings = {f.name for f in fields(Settings) if not f.metadata.get("derived")}
    assert settings <= documented, settings - documented
    models = README.split("## Models", 1)[1].split("\n## ", 1)[0]
    model_fields = set(re.findall(r"`([a-z_]+)`", models))
    assert set(OVERRIDABLE) <= model_fields, set(OVERRIDABLE) - model_fields


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first_block = quick.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make local", "make test"]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_deploy_section_tells_the_quota_and_the_tools_of_a_first_deploy():
    deploy = README.split("## Deploy, call, destroy", 1)[1].split("\n## ", 1)[0]
    for fragment in ("make preflight", "make smoke", "make logs MODEL=", "make destroy", "2 × that",
                     "ResourceLimitExceeded", "api_logging", "Both stay after `make destroy`", "--no-rollback"):
        assert fragment in deploy, fragment


def test_error_table_lists_only_what_the_deployed_api_can_answer():
    api = README.split("## The API", 1)[1].split("\n## ", 1)[0]
    statuses = re.findall(r"^\| (\d{3}) \| `([a-z_]+)`", api, flags=re.M)
    codes = {code for _, code in statuses}
    # Each documented code is one the API answers: the gateway's own (model_api.errors.GATEWAY_ERRORS) or one an
    # ApiError raises in the Lambda code (its source names it), and the main ones are all there.
    from model_api.errors import GATEWAY_ERRORS

    lambda_source = "".join(p.read_text() for p in (ROOT / "lambda").rglob("*.py"))
    for status, code in statuses:
        assert (int(status), code) in GATEWAY_ERRORS.values() or re.search(
            rf'ApiError\(\s*{status},\s*"{code}"', lambda_source), (status, code)
    assert {"request_too_heavy", "model_rejected_input", "invalid_request", "forbidden", "not_found",
            "method_not_allowed"} <= codes


def test_every_hosting_mode_command_in_the_readme_is_valid_settings():
    import shlex

    from stacks.settings import load_settings

    section = README.split("### Hosting modes", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r'make (?:local|deploy) (?:LOCAL_ARGS|CDK_ARGS)="([^"]+)"', section)
    assert len(commands) >= 6
    modes = set()
    for command in commands:
        words = shlex.split(command)
        pairs = [words[i + 1] for i, word in enumerate(words) if word == "-c"]
        modes |= {m.hosting for m in load_settings(pairs).catalog}  # raises SettingsError on a bad command
    assert modes == {"realtime", "serverless", "async", "shared"}
