"""Stable Diffusion weights from the Hub: only the files the pipeline needs (hub_files.py), proved on a recorded
listing of the default model's repository, and the download path of model_fn run against a fake Hub."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from deployment.model_catalog import PRESETS

SELECTION_TABLE = Path(__file__).parent / "snapshots" / "hub_selection.json"

ROOT = Path(__file__).resolve().parents[2]


def _hub_files():
    """The module inference.py imports as hub_files (by path: the code folder must not go on sys.path, where its
    inference.py would shadow every other model's in this process)."""
    if "hub_files" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "hub_files", ROOT / "models" / "stable_diffusion" / "code" / "hub_files.py")
        sys.modules["hub_files"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["hub_files"])
    return sys.modules["hub_files"]


hub_files = _hub_files()

LISTING = json.loads((Path(__file__).parent / "fixtures" / "sd2-1-base-listing.json").read_text())
FILES, MODEL_INDEX = LISTING["files"], LISTING["model_index"]
GB = 1_000_000_000


def toolkit_download(files: dict) -> list[str]:
    """What the inference toolkit 2.6.0 downloads for HF_MODEL_ID: its own filter, applied the way it applies it."""
    import transformers.file_utils

    if not hasattr(transformers.file_utils, "is_tf_available"):
        transformers.file_utils.is_tf_available = lambda: False
    from huggingface_hub.utils import filter_repo_objects
    from sagemaker_huggingface_inference_toolkit.transformers_utils import (
        create_artifact_filter,
    )

    return list(filter_repo_objects(files, ignore_patterns=create_artifact_filter("safetensors")))


def test_the_listing_is_the_default_models_repository():
    assert PRESETS["stable-diffusion"].hub_id == LISTING["repo"]
    assert PRESETS["stable-diffusion"].code_downloads


def test_default_model_on_gpu_downloads_at_most_3_gb_of_fp16_safetensors():
    paths, variant = hub_files.select_files(FILES, MODEL_INDEX, fp16=True)
    assert variant == "fp16"
    weights = [p for p in paths if p.endswith(".safetensors")]
    assert weights == ["text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
                       "vae/diffusion_pytorch_model.fp16.safetensors"]
    assert not any(p.endswith((".bin", ".ckpt")) or "/" not in p and p != "model_index.json" for p in paths)
    assert {"tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json",
            "feature_extractor/preprocessor_config.json", "unet/config.json"} <= set(paths)
    downloaded = hub_files.total_bytes(FILES, paths)
    assert downloaded <= 3 * GB, downloaded
    # The toolkit's HF_MODEL_ID download of the same repository: every copy but the .ckpt files.
    before = hub_files.total_bytes(FILES, toolkit_download(FILES))
    assert before > 20 * GB and before / downloaded > 8


def test_on_cpu_one_fp32_copy_of_each_component():
    paths, variant = hub_files.select_files(FILES, MODEL_INDEX, fp16=False)
    assert variant is None
    assert [p for p in paths if p.endswith(".safetensors")] == [
        "text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors"]
    assert hub_files.total_bytes(FILES, paths) < 5.5 * GB


def test_one_component_without_fp16_means_no_variant_for_any():
    files = {k: v for k, v in FILES.items() if not k.startswith("vae/diffusion_pytorch_model.fp16")}
    paths, variant = hub_files.select_files(files, MODEL_INDEX, fp16=True)
    assert variant is None
    assert "unet/diffusion_pytorch_model.safetensors" in paths and not any(".fp16." in p for p in paths)


def test_shards_with_their_index_and_bin_when_there_is_no_safetensors():
    files = {"model_index.json": 1, "unet/config.json": 1,
             "unet/diffusion_pytorch_model-00001-of-00002.safetensors": 5,
             "unet/diffusion_pytorch_model-00002-of-00002.safetensors": 5,
             "unet/diffusion_pytorch_model.safetensors.index.json": 1,
             "vae/config.json": 1, "vae/diffusion_pytorch_model.bin": 3, "scheduler/scheduler_config.json": 1,
             "extra/ignored.json": 1}
    index = {"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "scheduler": ["diffusers", "DDIMScheduler"], "safety_checker": [None, None]}
    paths, variant = hub_files.select_files(files, index, fp16=True, allow_pickle=True)
    assert variant is None
    assert set(paths) == set(files) - {"extra/ignored.json"}
    # Without the deployer's leave, a component whose only weights are pickle files is refused by name.
    with pytest.raises(ValueError, match=r"^components with only pickle \(\.bin\) weights: vae; pickle files can "
                                         r"run code when loaded: use a repository \(or revision\) with safetensors, or "
                                         r"set allow_pickle_weights=true for this model if you trust it$"):
        hub_files.select_files(files, index, fp16=True)


def test_pickle_weights_beside_safetensors_are_never_downloaded_unless_allowed():
    files = {"model_index.json": 1, "unet/config.json": 1, "unet/diffusion_pytorch_model.bin": 10,
             "unet/diffusion_pytorch_model.safetensors": 10, "unet/diffusion_pytorch_model.fp16.safetensors": 5,
             "vae/diffusion_pytorch_model.fp16.bin": 3, "vae/diffusion_pytorch_model.safetensors": 6,
             "vae/diffusion_pytorch_model.fp16.safetensors": 3}
    index = {"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    for fp16 in (True, False):
        paths, _ = hub_files.select_files(files, index, fp16=fp16)
        assert not any(p.endswith(".bin") for p in paths), (fp16, paths)
    # Allowed, a .bin is chosen where the preference puts it (plain before fp16 on a CPU: the same as safetensors'
    # order, so here the plain safetensors still win).
    assert hub_files.select_files(files, index, fp16=False, allow_pickle=True)[0] == \
        hub_files.select_files(files, index, fp16=False)[0]
    assert hub_files.pickle_allowed({"ALLOW_PICKLE_WEIGHTS": "true"}) and not hub_files.pickle_allowed({})


def test_on_cpu_full_precision_bin_beats_half_precision_safetensors():
    files = {"model_index.json": 1, "unet/config.json": 1, "unet/diffusion_pytorch_model.bin": 10,
             "unet/diffusion_pytorch_model.fp16.safetensors": 5}
    index = {"unet": ["diffusers", "UNet2DConditionModel"]}
    assert hub_files.select_files(files, index, fp16=False, allow_pickle=True) == (
        ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin"], None)


def test_fp16_only_weights_serve_the_cpu_too():
    files = {"model_index.json": 1, "unet/config.json": 1, "unet/diffusion_pytorch_model.fp16.safetensors": 5}
    index = {"unet": ["diffusers", "UNet2DConditionModel"]}
    assert hub_files.select_files(files, index, fp16=False, allow_pickle=True) == (
        ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors"], "fp16")


def test_a_component_with_no_usable_weights_is_an_error():
    files = {"model_index.json": 1, "unet/config.json": 1, "unet/model.onnx": 5, "scheduler/scheduler_config.json": 1}
    index = {"unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDIMScheduler"]}
    with pytest.raises(ValueError, match="without weights in safetensors: unet"):
        hub_files.select_files(files, index, fp16=False)
    with pytest.raises(ValueError, match="without weights in safetensors or bin: unet"):  # when .bin would do
        hub_files.select_files(files, index, fp16=False, allow_pickle=True)


class FakeHub:
    """A Hub repository served from a local pipeline folder, plus files a real repository carries that a pipeline
    does not need (a root checkpoint, .bin copies). Records what it was asked for."""

    def __init__(self, source: Path, revision: str = "0" * 40):
        self.source, self.sha = source, revision
        self.files = {p.relative_to(source).as_posix(): p.stat().st_size for p in source.rglob("*") if p.is_file()}
        self.extra = {"v2-1_512-ema-pruned.ckpt": 5 * GB, "unet/diffusion_pytorch_model.bin": 3 * GB}
        self.listings, self.fetched = [], []

    def listing(self, repo_id, revision):
        self.listings.append((repo_id, revision))
        return self.sha, {**self.files, **self.extra}

    def read_json(self, repo_id, sha, path):
        return json.loads((self.source / path).read_text())

    def fetch(self, repo_id, sha, paths, destination):
        assert sha == self.sha
        self.fetched.append(list(paths))
        for path in paths:
            (destination / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.source / path, destination / path)


def test_model_fn_downloads_only_what_the_pipeline_needs_once_and_loads_it(sd_inference, tiny_sd_dir, tmp_path,
                                                                         monkeypatch):
    hub = FakeHub(tiny_sd_dir)
    monkeypatch.setattr(sd_inference.hub_files, "HubRepository", lambda token=None: hub)
    monkeypatch.setenv("MODEL_HUB_ID", "org/tiny-sd")
    monkeypatch.setenv("MODEL_HUB_REVISION", "v1.0")
    monkeypatch.setenv("MODEL_DOWNLOAD_DIR", str(tmp_path / "weights"))
    empty_model_dir = tmp_path / "opt-ml-model"
    (empty_model_dir / "code").mkdir(parents=True)
    pipe = sd_inference.model_fn(str(empty_model_dir))
    assert hub.listings == [("org/tiny-sd", "v1.0")]
    fetched, = hub.fetched
    assert "v2-1_512-ema-pruned.ckpt" not in fetched and "unet/diffusion_pytorch_model.bin" not in fetched
    assert "unet/diffusion_pytorch_model.safetensors" in fetched
    folder = tmp_path / "weights" / "org--tiny-sd" / hub.sha
    marker = json.loads((folder / hub_files.COMPLETE_MARKER).read_text())
    # What a restarted worker reads back: the files, the weights' variant (none here) and the precision.
    assert marker == {"files": fetched, "variant": None, "fp16": marker["fp16"]}
    data = sd_inference.input_fn(json.dumps({"inputs": "x", "parameters": {"width": 64, "height": 64,
                                                                           "num_inference_steps": 1}}),
                                 "application/json")
    assert sd_inference.predict_fn(data, pipe)["images"][0].size == (64, 64)
    # A restarted worker finds the finished download and fetches nothing.
    sd_inference.model_fn(str(empty_model_dir))
    assert len(hub.fetched) == 1


def test_weights_inside_the_artifact_never_touch_the_hub(sd_inference, sd_artifact_dir, monkeypatch):
    def no_hub(*args, **kwargs):
        raise AssertionError("the Hub was contacted")

    monkeypatch.setattr(sd_inference.hub_files, "HubRepository", no_hub)
    monkeypatch.setenv("MODEL_HUB_ID", "org/tiny-sd")
    folder, variant = sd_inference.model_folder(str(sd_artifact_dir), cuda=False)
    assert folder == Path(sd_artifact_dir) and variant is None


def test_no_weights_and_no_hub_id_is_a_clear_error(sd_inference, tmp_path, monkeypatch):
    monkeypatch.delenv("MODEL_HUB_ID", raising=False)
    with pytest.raises(RuntimeError, match="holds no pipeline"):
        sd_inference.model_folder(str(tmp_path), cuda=False)


@pytest.mark.parametrize("stored, field, token", [
    ("hf_abc", None, "hf_abc"), ('{"HF_TOKEN": "hf_json"}', None, "hf_json"),
    ('{"HF_TOKEN": "other", "mine": "hf_field"}', "mine", "hf_field")])
def test_the_hub_token_comes_from_the_secret_not_the_environment(stored, field, token):
    from moto import mock_aws

    with mock_aws():
        import boto3

        boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="hf-token", SecretString=stored)
        environ = {"HF_TOKEN_SECRET_ID": "hf-token", **({"HF_TOKEN_SECRET_FIELD": field} if field else {})}
        assert hub_files.hub_token(environ) == token
    assert hub_files.hub_token({}) is None


def test_a_request_past_its_deadline_stops_denoising(sd_inference, tiny_sd_dir, monkeypatch):
    pipe = sd_inference.model_fn(str(tiny_sd_dir))
    steps = []
    monkeypatch.setattr(sd_inference, "REQUEST_DEADLINE_SECONDS", 1e-9)
    original = sd_inference._deadline_callback

    def counting(deadline):
        check = original(deadline)

        def wrapped(*args):
            steps.append(args[1])
            return check(*args)
        return wrapped

    monkeypatch.setattr(sd_inference, "_deadline_callback", counting)
    data = sd_inference.input_fn(json.dumps({"inputs": "x", "parameters": {"width": 64, "height": 64,
                                                                           "num_inference_steps": 5}}),
                                 "application/json")
    with pytest.raises(sd_inference.DeadlineExceeded, match="deadline"):
        sd_inference.predict_fn(data, pipe)
    assert steps == [0]
    monkeypatch.setattr(sd_inference, "REQUEST_DEADLINE_SECONDS", 0)
    assert len(sd_inference.predict_fn(data, pipe)["images"]) == 1


def test_components_with_different_variants_only_are_an_error_naming_them():
    files = {"model_index.json": 1, "unet/config.json": 1, "unet/diffusion_pytorch_model.fp16.safetensors": 5,
             "vae/config.json": 1, "vae/diffusion_pytorch_model.safetensors": 5}
    index = {"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    for fp16 in (True, False):
        with pytest.raises(ValueError, match=r"neither one plain nor one fp16 set of weights for every component "
                                             r"\(unet, vae\) in safetensors$"):
            hub_files.select_files(files, index, fp16=fp16)


def test_the_listing_reads_each_files_size_and_the_commit(monkeypatch):
    from types import SimpleNamespace

    import huggingface_hub

    def model_info(repo_id, revision=None, files_metadata=False, token=None):
        assert (repo_id, revision, files_metadata, token) == ("org/m", "main", True, "hf_t")
        return SimpleNamespace(sha="c" * 40, siblings=[SimpleNamespace(rfilename="unet/a.safetensors", size=5),
                                                       SimpleNamespace(rfilename="README.md", size=None)])

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, *a, **k: model_info(*a, **k))
    assert hub_files.HubRepository(token="hf_t").listing("org/m", "main") == (
        "c" * 40, {"unet/a.safetensors": 5, "README.md": 0})


def test_the_hub_adapter_asks_for_the_resolved_commit(monkeypatch, tmp_path):
    """HubRepository.read_json / fetch pass the commit the listing resolved, so every file comes from one revision."""
    import huggingface_hub

    asked = []
    (tmp_path / "model_index.json").write_text('{"unet": ["diffusers", "UNet2DConditionModel"]}')

    def fake_download(repo_id, filename, revision=None, token=None):
        asked.append((repo_id, filename, revision, token))
        return str(tmp_path / filename)

    def fake_snapshot(repo_id, revision=None, allow_patterns=None, local_dir=None, token=None):
        asked.append((repo_id, tuple(allow_patterns), revision, token, local_dir))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    hub = hub_files.HubRepository(token="hf_t")
    assert hub.read_json("org/m", "a" * 40, "model_index.json") == {"unet": ["diffusers", "UNet2DConditionModel"]}
    hub.fetch("org/m", "b" * 40, ["unet/config.json"], tmp_path)
    assert asked == [("org/m", "model_index.json", "a" * 40, "hf_t"),
                     ("org/m", ("unet/config.json",), "b" * 40, "hf_t", str(tmp_path))]


def test_the_download_is_logged_with_its_revision_and_size(tiny_sd_dir, tmp_path):
    hub, lines = FakeHub(tiny_sd_dir), []
    hub_files.download("org/tiny-sd", "v1", tmp_path, fp16=False, hub=hub, log=lines.append)
    event = json.loads(lines[0])
    paths = hub.fetched[0]
    assert event == {"event": "model_download", "repo": "org/tiny-sd", "revision": hub.sha, "files": len(paths),
                     "bytes": sum(hub.files[p] for p in paths),
                     "repository_bytes": sum(hub.files.values()) + sum(hub.extra.values()),
                     "variant": None, "to": str(tmp_path / "org--tiny-sd" / hub.sha)}


@pytest.mark.parametrize("stored", ['{"token": "hf_json"}', '{"HF_TOKEN": "", "token": "hf_json"}'])
def test_a_json_secret_may_name_the_token_token(stored):
    from moto import mock_aws

    with mock_aws():
        import boto3

        boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="hf-token", SecretString=stored)
        assert hub_files.hub_token({"HF_TOKEN_SECRET_ID": "hf-token"}) == "hf_json"


def test_an_interrupted_download_is_resumed_into_its_folder(tiny_sd_dir, tmp_path):
    hub = FakeHub(tiny_sd_dir)
    folder = tmp_path / "org--tiny-sd" / hub.sha
    folder.mkdir(parents=True)  # a worker died mid-download: folder, no completion marker
    (folder / "model_index.json").write_text("{}")
    assert hub_files.download("org/tiny-sd", None, tmp_path, fp16=False, hub=hub, log=lambda line: None)[0] == folder
    assert (folder / hub_files.COMPLETE_MARKER).is_file()


def test_a_download_that_misses_files_fails_before_it_is_marked_complete(tiny_sd_dir, tmp_path):
    class LossyHub(FakeHub):
        def fetch(self, repo_id, sha, paths, destination):
            super().fetch(repo_id, sha, [p for p in paths if not p.startswith("unet/")], destination)

    hub = LossyHub(tiny_sd_dir)
    with pytest.raises(RuntimeError, match=r"download of org/tiny-sd@0{40} is missing \['unet/"):
        hub_files.download("org/tiny-sd", None, tmp_path, fp16=False, hub=hub, log=lambda line: None)
    assert not (tmp_path / "org--tiny-sd" / hub.sha / hub_files.COMPLETE_MARKER).exists()


def test_a_secret_without_a_token_says_which_secret():
    from moto import mock_aws

    with mock_aws():
        import boto3

        boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="hf-token", SecretString="{}")
        with pytest.raises(RuntimeError, match="^secret hf-token holds no Hub token$"):
            hub_files.hub_token({"HF_TOKEN_SECRET_ID": "hf-token"})


def test_a_finished_download_is_found_again_with_its_variant_and_not_fetched(tiny_sd_dir, tmp_path):
    class NoFetch(FakeHub):
        def fetch(self, *args):
            raise AssertionError("a finished download must not fetch again")

    hub = NoFetch(tiny_sd_dir)
    folder = tmp_path / "org--tiny-sd" / hub.sha
    folder.mkdir(parents=True)
    (folder / hub_files.COMPLETE_MARKER).write_text(json.dumps({"files": [], "variant": "fp16", "fp16": True}))
    assert hub_files.download("org/tiny-sd", None, tmp_path, fp16=True, hub=hub, log=lambda line: None) == \
        (folder, "fp16")


# Weight files of one component, by what a repository may hold.
WEIGHT_SETS = {
    "none": [],
    "safetensors": ["diffusion_pytorch_model.safetensors"],
    "fp16 safetensors": ["diffusion_pytorch_model.fp16.safetensors"],
    "bf16 safetensors": ["diffusion_pytorch_model.bf16.safetensors"],
    "bin": ["diffusion_pytorch_model.bin"],
    "fp16 bin": ["diffusion_pytorch_model.fp16.bin"],
    "shards": ["diffusion_pytorch_model-00001-of-00002.safetensors",
               "diffusion_pytorch_model-00002-of-00002.safetensors", "diffusion_pytorch_model.safetensors.index.json"],
    "fp16 shards": ["diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
                    "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
                    "diffusion_pytorch_model.safetensors.index.fp16.json"],
    "all four": ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                 "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"],
    "bin and fp16 safetensors": ["diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.safetensors"],
    "fp16 bin and safetensors": ["diffusion_pytorch_model.fp16.bin", "diffusion_pytorch_model.safetensors"],
    "in a subfolder": ["sub/diffusion_pytorch_model.safetensors"],
    "other files": ["diffusion_pytorch_model.ckpt", "diffusion_pytorch_model.onnx", "README.md"],
}
TABLE_INDEX = {"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
               "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "DDIMScheduler"],
               "safety_checker": [None, None], "_class_name": "StableDiffusionPipeline", "a/b": ["x", "Y"]}


def selection(unet: str, vae: str, fp16: bool) -> dict:
    files = {"model_index.json": 1, "unet/config.json": 1, "vae/config.json": 1, "tokenizer/vocab.json": 1,
             "tokenizer/merges.txt": 1, "scheduler/scheduler_config.json": 1, "README.md": 1, "a/b/x.bin": 1,
             "safety_checker/model.safetensors": 1}
    files.update({f"unet/{name}": 1 for name in WEIGHT_SETS[unet]})
    files.update({f"vae/{name}": 1 for name in WEIGHT_SETS[vae]})
    try:
        paths, variant = hub_files.select_files(files, TABLE_INDEX, fp16=fp16)
    except ValueError as exc:
        return {"error": str(exc)}
    return {"files": paths, "variant": variant}


def test_each_repository_shape_selects_what_the_reviewed_table_says():
    """Every pair of weight sets for two components, on a GPU (fp16) and a CPU: the files downloaded and the variant,
    or the whole error (tests/models/snapshots/hub_selection.json; `make snapshots` rewrites it)."""
    rows = [[unet, vae, fp16, selection(unet, vae, fp16)] for unet in WEIGHT_SETS for vae in WEIGHT_SETS
            for fp16 in (True, False)]
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SELECTION_TABLE.parent.mkdir(exist_ok=True)
        SELECTION_TABLE.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
    expected = json.loads(SELECTION_TABLE.read_text())
    changed = [f"unet {u}, vae {v}, fp16={f}: table {e!r}, now {a!r}" for (u, v, f, a), (_, _, _, e)
               in zip(rows, expected) if a != e]
    assert len(rows) == len(expected) and not changed, "\n".join(changed[:20])


def test_only_top_level_entries_with_a_library_and_a_class_are_components():
    assert hub_files.component_folders(TABLE_INDEX) == ["scheduler", "tokenizer", "unet", "vae"]
