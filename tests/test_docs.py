"""The README is the front door and docs/ the rest: both must stay true to the code. The settings reference and the
error catalog are generated from the code (ops/docs.py) and checked here; every link resolves."""

import re
import shlex
from dataclasses import fields
from pathlib import Path

from model_api.errors import ERROR_CATALOG, GATEWAY_ERRORS

from deployment import setting_docs
from deployment.model_catalog import OVERRIDABLE
from deployment.settings import Settings, load_settings
from ops import docs as generator

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text()


def test_the_readme_is_a_front_door_and_docs_hold_the_rest():
    assert len(README.splitlines()) <= 150
    for heading in ("## Quick start", "## Deploy, call, destroy", "## Documentation"):
        assert heading in README
    linked = set(re.findall(r"\]\(docs/([a-z-]+\.md)\)", README))
    assert linked == {p.name for p in DOCS.glob("*.md")}  # every page is reachable from the front door


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first_block = quick.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make local", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_deploy_page_tells_the_quota_and_the_tools_of_a_first_deploy():
    deploy = page("deploy.md")
    for fragment in ("make preflight", "make smoke", "make logs MODEL=", "make destroy", "2 × that",
                     "ResourceLimitExceeded", "api_logging", "Both stay after `make destroy`", "--no-rollback"):
        assert fragment in deploy, fragment


def test_the_generated_pages_are_what_the_code_says():
    assert generator.main(["--check"]) == 0, "run make docs"


def test_every_setting_and_model_field_has_one_meaning_and_no_stale_one():
    documented = [name for names, _ in setting_docs.SETTINGS for name in names]
    settings = {f.name for f in fields(Settings) if not f.metadata.get("derived")}
    assert sorted(documented) == sorted(settings)  # each once, none that does not exist
    model_fields = [name for names, _ in setting_docs.MODEL_FIELDS for name in names]
    assert sorted(model_fields) == sorted(OVERRIDABLE)
    reference = page("settings.md")
    assert all(f"`{name}`" in reference for name in settings | set(OVERRIDABLE))


def without_mutants(text: str) -> str:
    """Source as written: under make mutation, mutmut adds each mutant as a function of its own (x_f__mutmut_3,
    beside the original x_f__mutmut_orig), whose mutated statuses are no error the API answers."""
    blocks = re.split(r"(?m)^(?=[ \t]*(?:async )?def )", text)
    return "".join(b for b in blocks if not re.match(r"[ \t]*(?:async )?def \w+__mutmut_\d+\(", b))


def test_the_error_catalog_is_every_error_the_api_answers_and_no_other():
    """Each (status, code) an ApiError raises in the Lambda code, and each gateway response, is a row; each row's
    codes are raised with that status (or are the gateway's)."""
    source = "".join(without_mutants(p.read_text()) for p in (ROOT / "lambda").rglob("*.py"))
    raised = {(int(status), code) for status, code in re.findall(r'ApiError\(\s*(\d{3}),\s*"([a-z_]+)"', source)}
    catalog = {(row.status, code) for row in ERROR_CATALOG for code in row.codes}
    gateway = set(GATEWAY_ERRORS.values())
    # The Lambda's own, and the gateway's a caller meets (a route for every path, so never RESOURCE_NOT_FOUND's
    # 404; BAD_REQUEST_*, UNSUPPORTED_MEDIA_TYPE and the DEFAULT_* ones are never reached by a proxy route).
    assert raised <= catalog, raised - catalog
    unreached = {(404, "not_found"), (400, "invalid_request"), (415, "unsupported_media_type"),
                 (400, "bad_request"), (500, "internal_error"), (403, "forbidden")}
    assert gateway - unreached <= catalog, gateway - unreached - catalog
    # Local mode's HTTP server: its framing refusals, its busy answer and its answer while the model loads.
    from local.gateway import FRAMING_ERRORS

    local = {(row.status, code) for row in ERROR_CATALOG if row.source == "local mode" for code in row.codes}
    assert local == {*FRAMING_ERRORS.items(), (503, "busy"), (503, "starting")} - {(413, "request_too_large")}
    assert catalog - local <= raised | gateway, catalog - local - raised - gateway


def test_every_hosting_mode_command_on_the_models_page_is_valid_settings():
    section = page("models.md").split("## Hosting modes", 1)[1]
    commands = re.findall(r'make (?:local|deploy) (?:LOCAL_ARGS|CDK_ARGS)="([^"]+)"', section)
    assert len(commands) >= 6
    modes = set()
    for command in commands:
        words = shlex.split(command)
        pairs = [words[i + 1] for i, word in enumerate(words) if word == "-c"]
        modes |= {m.hosting for m in load_settings(pairs).catalog}  # raises SettingsError on a bad command
    assert modes == {"realtime", "serverless", "async", "shared"}


def test_every_link_between_pages_resolves_to_a_page_and_its_heading():
    pages = {DOCS / p.name: p.read_text() for p in DOCS.glob("*.md")} | {ROOT / "README.md": README}
    broken = []
    for path, text in pages.items():
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in {
                    generator.slug(h) for h in re.findall(r"(?m)^#{1,6} (.+)$", resolved.read_text())}:
                broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, broken
