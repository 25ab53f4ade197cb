"""models/stable_diffusion/code/inference.py with a tiny random-weight pipeline: the hooks directly, and through
the real Hugging Face inference toolkit handler service in-process (the contract the container uses)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from local.toolkit import ModelError, ToolkitModel


def request(prompt="a cyborg tiger", **parameters) -> str:
    return json.dumps({"inputs": prompt, "parameters": {"width": 64, "height": 64, "num_inference_steps": 2,
                                                        "seed": 1, **parameters}})


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    image.verify()
    return Image.open(io.BytesIO(data)).size


@pytest.fixture(scope="module")
def pipe(sd_inference, tiny_sd_dir):
    return sd_inference.model_fn(str(tiny_sd_dir))


def test_hooks_make_a_png_of_the_requested_size(sd_inference, pipe):
    data = sd_inference.input_fn(request(width=96, height=64), "application/json")
    assert data["width"] == 96 and data["guidance_scale"] == 7.5 and data["num_images_per_prompt"] == 1
    prediction = sd_inference.predict_fn(data, pipe)
    png = sd_inference.output_fn(prediction, "image/png")
    assert png_size(png) == (96, 64)


def test_same_seed_same_image_and_other_seed_other_image(sd_inference, pipe):
    def generate(seed):
        data = sd_inference.input_fn(request(seed=seed), "application/json")
        return sd_inference.output_fn(sd_inference.predict_fn(data, pipe), "image/png")

    assert generate(3) == generate(3)
    assert generate(3) != generate(4)


def test_json_output_is_the_jumpstart_shape_with_several_images(sd_inference, pipe):
    data = sd_inference.input_fn(request(num_images_per_prompt=3, negative_prompt="blurry"), "application/json")
    body = json.loads(sd_inference.output_fn(sd_inference.predict_fn(data, pipe), "application/json"))
    assert body["prompt"] == "a cyborg tiger"
    images = [base64.b64decode(i) for i in body["generated_images"]]
    assert len(images) == 3 and len(set(images)) == 3
    assert all(png_size(i) == (64, 64) for i in images)


@pytest.mark.parametrize("body, content_type, message", [
    (request(width=65), "application/json", "width must be a multiple of 8"),
    (request(width=4096), "application/json", "width must be an integer from 64 to 1024"),
    (request(num_inference_steps=0), "application/json", "num_inference_steps must be an integer"),
    (request(num_images_per_prompt=9), "application/json", "num_images_per_prompt must be an integer"),
    (request(guidance_scale="high"), "application/json", "guidance_scale must be a number"),
    (request(seed=-1), "application/json", "seed must be an integer"),
    (request(strength=0.5), "application/json", "unknown parameters ['strength']"),
    (request(prompt=""), "application/json", "inputs must be a non-empty prompt string"),
    (request(negative_prompt=3), "application/json", "negative_prompt must be a string"),
    ("[1]", "application/json", "body must be a JSON object"),
    ("{", "application/json", "body is not valid JSON"),
    (request(), "text/csv", "content type 'text/csv' is not supported"),
])
def test_input_fn_rejects_bad_requests(sd_inference, body, content_type, message):
    # The caller reads this text (the API passes it on as model_rejected_input): it starts the message.
    with pytest.raises(ValueError, match="^" + re.escape(sd_inference.INVALID_INPUT + message)):
        sd_inference.input_fn(body, content_type)


def test_output_fn_rejects_unusable_accept_types(sd_inference):
    image = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match="exactly one image"):
        sd_inference.output_fn({"images": [image, image], "prompt": "p"}, "image/png")
    with pytest.raises(ValueError, match="accept type 'image/jpeg' is not supported"):
        sd_inference.output_fn({"images": [image], "prompt": "p"}, "image/jpeg")


# ------------------------------------------------------------------------------------------------------ toolkit


@pytest.fixture(scope="module")
def served(sd_artifact_dir):
    return ToolkitModel(sd_artifact_dir)


def test_toolkit_serves_png_bytes_for_image_png(served):
    body, content_type = served.invoke(request().encode(), "application/json", "image/png")
    assert content_type == "image/png"
    assert png_size(body) == (64, 64)


def test_toolkit_serves_jumpstart_json_for_application_json(served):
    body, content_type = served.invoke(request(num_images_per_prompt=2).encode(), "application/json",
                                       "application/json")
    assert content_type == "application/json"
    assert len(json.loads(body)["generated_images"]) == 2


def test_toolkit_serves_several_pngs_back_to_back(served):
    from model_api.kinds.text_to_image import split_png_sequence

    body, content_type = served.invoke(request(num_images_per_prompt=3).encode(), "application/json",
                                       "application/x-png-sequence")
    assert content_type == "application/x-png-sequence"
    images = split_png_sequence(body)
    assert len(images) == 3 and len(set(images)) == 3 and all(png_size(i) == (64, 64) for i in images)


def test_toolkit_turns_bad_input_into_a_400_model_error(served):
    with pytest.raises(ModelError) as caught:
        served.invoke(request(width=100).encode(), "application/json", "image/png")
    assert caught.value.status == 400 and "multiple of 8" in caught.value.message


def test_toolkit_and_lambda_agree_on_the_request(served):
    """The body the Lambda builds is one the container accepts, and what it returns the Lambda can decode."""
    from model_api.kinds.text_to_image import ImageRequest, decode_model_images, model_request

    for count in (1, 2):
        body, accept = model_request(ImageRequest("p", "n", 64, 64, 2, 5.0, 9, count), seed=9)
        content, content_type = served.invoke(body, "application/json", accept)
        images, media_type = decode_model_images(content, content_type, count)
        assert media_type == "image/png"
        assert len(images) == count and all(png_size(i) == (64, 64) for i in images)


def test_on_a_gpu_the_pipeline_loads_in_half_precision_onto_cuda(sd_inference, sd_artifact_dir, monkeypatch):
    loaded = {}

    class FakePipe:
        def to(self, device):
            loaded["device"] = device
            return self

        def set_progress_bar_config(self, **options):
            loaded["progress"] = options

    class FakePipeline:
        @staticmethod
        def from_pretrained(folder, **options):
            loaded.update(folder=folder, **options)
            return FakePipe()

    monkeypatch.setattr(sd_inference.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(sd_inference, "DiffusionPipeline", FakePipeline)
    sd_inference.model_fn(str(sd_artifact_dir))
    # Safetensors only, an artifact's weights too, unless the deployer allows pickle weights.
    assert loaded == {"folder": str(sd_artifact_dir), "torch_dtype": sd_inference.torch.float16, "device": "cuda",
                      "progress": {"disable": True}, "use_safetensors": True}
    monkeypatch.setenv("ALLOW_PICKLE_WEIGHTS", "true")
    sd_inference.model_fn(str(sd_artifact_dir))
    assert loaded["use_safetensors"] is False


def test_png_accept_with_several_images_says_what_to_ask_for(sd_inference):
    from PIL import Image

    images = [Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8))]
    with pytest.raises(ValueError, match=r"^image/png carries exactly one image; ask for application/json for "
                                         r"several$"):
        sd_inference.output_fn({"images": images, "prompt": "p"}, "image/png")


@pytest.mark.parametrize("cuda", [True, False])
def test_weights_download_to_the_instance_storage_in_the_precision_of_the_device(sd_inference, tmp_path, monkeypatch,
                                                                                  cuda):
    asked = {}

    def download(repo_id, revision, root, fp16, hub, allow_pickle):
        asked.update(repo_id=repo_id, revision=revision, root=root, fp16=fp16, allow_pickle=allow_pickle)
        return tmp_path, "fp16" if fp16 else None

    monkeypatch.setattr(sd_inference.hub_files, "download", download)
    monkeypatch.setenv("MODEL_HUB_ID", "org/m")
    monkeypatch.delenv("MODEL_DOWNLOAD_DIR", raising=False)
    monkeypatch.delenv("MODEL_HUB_REVISION", raising=False)
    assert sd_inference.model_folder(str(tmp_path / "empty"), cuda=cuda, hub=object()) == (
        tmp_path, "fp16" if cuda else None)
    assert asked == {"repo_id": "org/m", "revision": None, "root": Path("/tmp/model-weights"), "fp16": cuda,
                     "allow_pickle": False}
    monkeypatch.setenv("ALLOW_PICKLE_WEIGHTS", "true")
    sd_inference.model_folder(str(tmp_path / "empty"), cuda=cuda, hub=object())
    assert asked["allow_pickle"] is True


def test_input_arrives_as_bytes_from_the_toolkit(sd_inference):
    data = sd_inference.input_fn(json.dumps({"inputs": "a fox"}).encode(), "application/json")
    assert data["prompt"] == "a fox"
