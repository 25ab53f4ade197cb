"""ops.artifact: a model.tar.gz with the weights inside, which the inference code loads without the Hub."""

from __future__ import annotations

import tarfile
from pathlib import Path

from ops import artifact

ROOT = Path(__file__).resolve().parents[2]
SD_CODE = ROOT / "models" / "stable_diffusion" / "code"


def test_weights_at_the_root_code_under_code_and_the_same_bytes_every_time(tiny_sd_dir, tmp_path):
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    names = artifact.build(tiny_sd_dir, first, SD_CODE)
    artifact.build(tiny_sd_dir, second, SD_CODE)
    assert first.read_bytes() == second.read_bytes()
    assert "model_index.json" in names and "code/inference.py" in names and "code/hub_files.py" in names
    assert names == sorted(names)
    with tarfile.open(first) as tar:
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())


def test_the_unpacked_artifact_loads_without_the_hub(tiny_sd_dir, tmp_path, sd_inference, monkeypatch):
    archive = tmp_path / "model.tar.gz"
    artifact.build(tiny_sd_dir, archive, SD_CODE)
    unpacked = tmp_path / "opt-ml-model"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    monkeypatch.delenv("MODEL_HUB_ID", raising=False)
    pipe = sd_inference.model_fn(str(unpacked))
    data = sd_inference.input_fn('{"inputs": "x", "parameters": {"width": 64, "height": 64, '
                                 '"num_inference_steps": 1}}', "application/json")
    assert sd_inference.predict_fn(data, pipe)["images"][0].size == (64, 64)
