"""The README is the front door: it must stay true to the code."""

import re
from dataclasses import fields
from pathlib import Path

from stacks.model_catalog import OVERRIDABLE
from stacks.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    table = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", table))
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
