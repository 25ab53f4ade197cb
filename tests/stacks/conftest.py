import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def synth_assembly():
    """Synthesize the real app (with cdk-nag) for given settings; cached, since each synth costs ~0.3 s."""
    from app import build_app

    cache = {}

    def _synth(**settings):
        key = json.dumps(settings, sort_keys=True)
        if key not in cache:
            # Path metadata as the CLI adds it, so tests can find resources by construct path.
            app = build_app({**CDK_JSON_CONTEXT, "aws:cdk:enable-path-metadata": True, **settings})
            cache[key] = app.synth()  # raises on any unacknowledged cdk-nag finding
        return cache[key]

    return _synth


@pytest.fixture(scope="session")
def synth(synth_assembly):
    def _template(**settings) -> dict:
        stack = synth_assembly(**settings).get_stack_by_name(settings.get("stack_name", "SageMakerModelApi"))
        return stack.template

    return _template


@pytest.fixture(scope="session")
def template(synth) -> dict:
    return synth()
