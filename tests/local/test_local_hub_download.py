"""Local mode's --model-id for a model whose code downloads its weights: the same model_fn and hub_files as on
SageMaker, only the files the pipeline needs (the Hub replaced by a local stand-in)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_model_id_goes_through_the_codes_own_download(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    from test_hub_files import FakeHub, hub_files

    from deployment.settings import Settings
    from local.__main__ import local_model, model_weights
    from local.tiny_models import build_tiny_stable_diffusion

    hub = FakeHub(build_tiny_stable_diffusion(tmp_path / "source"))
    monkeypatch.setattr(hub_files, "HubRepository", lambda token=None: hub)
    model = Settings.from_values({}).catalog[0]
    weights, description = model_weights(model, {}, {model.name: "org/tiny-sd"}, tmp_path / "cache")
    assert weights is None and "only the files the pipeline needs" in description
    served = local_model(model, weights, tmp_path / "cache", "org/tiny-sd")
    fetched, = hub.fetched
    assert "v2-1_512-ema-pruned.ckpt" not in fetched
    assert (tmp_path / "cache" / "hub" / "org--tiny-sd" / hub.sha / "model_index.json").is_file()
    body, content_type = served.invoke(json.dumps({"inputs": "x", "parameters": {
        "width": 64, "height": 64, "num_inference_steps": 1}}).encode(), "application/json", "image/png")
    assert content_type == "image/png" and body.startswith(b"\x89PNG")
