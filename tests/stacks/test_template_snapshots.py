"""Every synthesized template against its reviewed snapshot (tests/stacks/snapshots/templates/<variant>.json).

The other stack tests assert what each resource must be; this one notices everything else: any change to what
`cdk deploy` would create (a property, a policy, an alarm's period, a description, the OpenAPI document the API
serves, the request models the gateway validates with) and to the cdk-nag findings acknowledged with their reasons
("_nag_acknowledged") fails here with the diff to review. After an intended change,
`make snapshots` rewrites the files and `git diff tests/stacks/snapshots` is the review.

Normalized so that a snapshot changes only when the deployment does: asset hashes (the Lambda code's and the model
archive's, which change with every edit of the code they package; the code's behaviour is tested where it lives) and
the hash CDK appends to a Lambda version's logical id for the same reason.
"""

import difflib
import json
import os
import re
from pathlib import Path

import pytest
from test_least_privilege_and_destroy import VARIANTS as LEAST_PRIVILEGE_VARIANTS
from test_nag_and_lint import SETTING_VARIANTS, VARIANT_IDS

SNAPSHOTS = Path(__file__).parent / "snapshots" / "templates"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"  # make snapshots
# The nag/lint variants cover every construct and setting family; "all" adds every model preset's kind and source.
SNAPSHOT_VARIANTS = {**dict(zip(VARIANT_IDS, SETTING_VARIANTS)), "all-presets": LEAST_PRIVILEGE_VARIANTS["all"],
                     # the API's logging modes beyond the default, and a model from an S3 artifact
                     **{name: LEAST_PRIVILEGE_VARIANTS[name] for name in ("logging-off", "logging-role", "s3-artifact")},
                     # the one kind and protocol pair no other variant deploys (the coverage test below names it)
                     "embeddings-toolkit": {"models": "minilm-embeddings", "minilm-embeddings.protocol": "toolkit"}}

ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
VERSION_ID = re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}")


def normalized(template: dict) -> str:
    text = json.dumps(template, indent=1, sort_keys=True, ensure_ascii=False)
    return VERSION_ID.sub(r"\1<code-hash>", ASSET_HASH.sub("<asset-hash>", text)) + "\n"


def test_normalizing_hides_only_code_hashes():
    template = {"Resources": {
        "FnCurrentVersion4E2B226151e1b3c6f0a3c0f1c96b7c4ffb9d7d0e": {"Type": "AWS::Lambda::Version"},
        "Fn": {"Properties": {"Code": {"S3Key": "0" * 63 + "a.zip"}, "Description": "0123456789abcdef"}}}}
    text = normalized(template)
    assert '"FnCurrentVersion4E2B2261<code-hash>"' in text
    assert '"S3Key": "<asset-hash>.zip"' in text
    assert '"Description": "0123456789abcdef"' in text  # a short hex value is data, not a hash


def acknowledged(assembly) -> dict[str, dict[str, str]]:
    """construct path -> {cdk-nag rule: the reason it is acknowledged there}: the findings waived, and why."""
    stack = assembly.stacks[0]
    metadata = json.loads(Path(assembly.directory, f"{stack.stack_name}.metadata.json").read_text())
    out: dict[str, dict[str, str]] = {}
    for path, entries in sorted(metadata.items()):
        for entry in entries:  # one entry per acknowledgment call: a construct may have several
            if entry.get("type") == "aws:cdk:acknowledged-rules":
                out.setdefault(path, {}).update(entry["data"])
    return out


@pytest.mark.parametrize("variant", sorted(SNAPSHOT_VARIANTS))
def test_the_template_is_the_reviewed_snapshot(variant, synth_assembly):
    assembly = synth_assembly(**SNAPSHOT_VARIANTS[variant])
    template = assembly.get_stack_by_name("SageMakerModelApi").template
    # Beside what is deployed, the cdk-nag findings acknowledged and their reasons (the stack's security exceptions).
    actual = normalized({**template, "_nag_acknowledged": acknowledged(assembly)})
    path = SNAPSHOTS / f"{variant}.json"
    if UPDATE:
        path.write_text(actual)
    assert path.exists(), f"no snapshot of {variant}: run `make snapshots` and review the new file"
    expected = path.read_text()
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"snapshots/templates/{variant}.json",
                                    "synthesized", n=2, lineterm="")
        shown = list(diff)[:120]
        pytest.fail(f"the {variant} template differs from its snapshot (intended? `make snapshots`, then review "
                    "git diff tests/stacks/snapshots):\n" + "\n".join(shown))


def test_every_snapshot_belongs_to_a_variant():
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.json")) == sorted(SNAPSHOT_VARIANTS)


def test_the_snapshots_cover_every_kind_protocol_and_hosting_mode_registered():
    """The variants follow the registries: a kind, a protocol or a hosting mode no snapshot deploys fails here."""
    from model_api.kinds import KIND_MODULES

    from deployment.hosting import HOSTING_MODES
    from deployment.settings import Settings

    deployed = [m for variant in SNAPSHOT_VARIANTS.values() for m in Settings.from_values(dict(variant)).catalog]
    assert {m.hosting for m in deployed} >= set(HOSTING_MODES)
    assert {(m.kind, m.api_protocol) for m in deployed} >= {(module.KIND.name, protocol) for module in KIND_MODULES
                                   for protocol in module.KIND.protocols}
