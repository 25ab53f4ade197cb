"""Stable Diffusion text-to-image for the SageMaker Hugging Face inference container (toolkit hooks).

Request (application/json): {"inputs": "<prompt>", "parameters": {"negative_prompt", "width", "height",
"num_inference_steps", "guidance_scale", "seed", "num_images_per_prompt"}}.
Response: Accept image/png -> the PNG bytes of one image (no base64: a third smaller, nothing to decode);
Accept application/x-png-sequence -> the PNG files of every image back to back (PNG files delimit themselves), the
same saving for several images; Accept application/json -> {"generated_images": [<base64 PNG>, ...], "prompt": ...}
(the JumpStart shape).

Weights: from model_dir when it holds a pipeline (a model.tar.gz with the weights: the production path, nothing
downloaded from a third party at instance start), else from the Hub repository MODEL_HUB_ID (at MODEL_HUB_REVISION),
fetching only the files the pipeline needs (hub_files.py) into MODEL_DOWNLOAD_DIR.

The API validates requests before they get here; the bounds below protect the container from any other caller.
Local mode (local/) loads this same file through the same hooks.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import sys
import time
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

try:
    import hub_files  # beside this file: the toolkit puts code/ on sys.path while it loads this module
except ImportError:  # loaded by path (tests): load the sibling by path too, without changing sys.path for others
    _spec = importlib.util.spec_from_file_location("hub_files", Path(__file__).with_name("hub_files.py"))
    hub_files = sys.modules["hub_files"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(hub_files)

MAX_SIZE = int(os.environ.get("SD_MAX_SIZE", "1024"))
MAX_STEPS = int(os.environ.get("SD_MAX_STEPS", "150"))
MAX_IMAGES = int(os.environ.get("SD_MAX_IMAGES", "8"))
SEED_MAX = 2**32 - 1
DEFAULTS = {"width": 512, "height": 512, "num_inference_steps": 30, "guidance_scale": 7.5, "num_images_per_prompt": 1}
PARAMETERS = set(DEFAULTS) | {"negative_prompt", "seed"}
# Seconds a request may denoise: past it the caller (the API's Lambda) has stopped waiting, so the worker stops
# too instead of finishing an image nobody will fetch. 0: no deadline.
REQUEST_DEADLINE_SECONDS = float(os.environ.get("REQUEST_DEADLINE_SECONDS", "0"))


# The toolkit answers 400 for every exception, its own faults included; a message starting with this marks the
# caller's mistake, which the API passes on as its own 400 (model_api.container_text.INPUT_REFUSED: keep the two equal).
INVALID_INPUT = "invalid input: "


class InvalidInput(ValueError):
    def __init__(self, message: str):
        super().__init__(INVALID_INPUT + message)


class DeadlineExceeded(RuntimeError):
    pass


def model_folder(model_dir, cuda: bool, hub=None):
    """(folder holding the pipeline, variant): model_dir itself when it has model_index.json, else the files the
    pipeline needs, downloaded from MODEL_HUB_ID."""
    if (Path(model_dir) / "model_index.json").is_file():
        return Path(model_dir), None
    repo_id = os.environ.get("MODEL_HUB_ID")
    if not repo_id:
        raise RuntimeError(f"{model_dir} holds no pipeline (model_index.json) and MODEL_HUB_ID is not set")
    root = Path(os.environ.get("MODEL_DOWNLOAD_DIR") or "/tmp/model-weights")
    return hub_files.download(repo_id, os.environ.get("MODEL_HUB_REVISION") or None, root, fp16=cuda,
                              hub=hub or hub_files.HubRepository(hub_files.hub_token()),
                              allow_pickle=hub_files.pickle_allowed())


def model_fn(model_dir, context=None):
    """Load the pipeline once per worker: half precision on GPU (half the memory, tensor cores), fp32 on CPU
    (fp16 is slow or unsupported there)."""
    cuda = torch.cuda.is_available()
    folder, variant = model_folder(model_dir, cuda)
    # torch_dtype, not dtype: older diffusers (0.33) do not know the newer name; every version accepts this one.
    # Safetensors only unless pickle weights are allowed (hub_files.PICKLE_FORMATS): an artifact's too.
    options = {"torch_dtype": torch.float16 if cuda else torch.float32,
               "use_safetensors": not hub_files.pickle_allowed()}
    if variant:
        options["variant"] = variant
    pipe = DiffusionPipeline.from_pretrained(str(folder), **options)
    pipe = pipe.to("cuda" if cuda else "cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def input_fn(input_data, content_type, context=None):
    if content_type != "application/json":
        raise InvalidInput(f"content type {content_type!r} is not supported; send application/json")
    if isinstance(input_data, (bytes, bytearray)):
        input_data = input_data.decode("utf-8")
    try:
        request = json.loads(input_data)
    except ValueError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidInput("body must be a JSON object")
    prompt = request.get("inputs")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInput("inputs must be a non-empty prompt string")
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be an object")
    unknown = sorted(set(parameters) - PARAMETERS)
    if unknown:
        raise InvalidInput(f"unknown parameters {unknown}; allowed: {sorted(PARAMETERS)}")
    params = {**DEFAULTS, **parameters}
    for name in ("width", "height"):
        _check_int(params, name, 64, MAX_SIZE)
        if params[name] % 8:
            raise InvalidInput(f"{name} must be a multiple of 8")
    _check_int(params, "num_inference_steps", 1, MAX_STEPS)
    _check_int(params, "num_images_per_prompt", 1, MAX_IMAGES)
    scale = params["guidance_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 50:
        raise InvalidInput("guidance_scale must be a number from 0 to 50")
    if params.get("seed") is not None:
        _check_int(params, "seed", 0, SEED_MAX)
    negative = params.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise InvalidInput("negative_prompt must be a string")
    return {"prompt": prompt, **params}


def _check_int(params, name, low, high):
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}")


def _deadline_callback(deadline: float):
    def check(pipe, step, timestep, callback_kwargs):
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"stopped after step {step + 1}: the request passed its "
                                   f"{REQUEST_DEADLINE_SECONDS:g} s deadline")
        return callback_kwargs
    return check


def predict_fn(data, pipe, context=None):
    seed = data.get("seed")
    # A CPU generator gives the same latents on CPU and GPU, so a seed reproduces an image anywhere.
    generator = torch.Generator("cpu").manual_seed(seed) if seed is not None else None
    deadline = {"callback_on_step_end": _deadline_callback(time.monotonic() + REQUEST_DEADLINE_SECONDS)} \
        if REQUEST_DEADLINE_SECONDS > 0 else {}
    with torch.inference_mode():
        result = pipe(
            prompt=data["prompt"],
            negative_prompt=data.get("negative_prompt") or None,
            width=data["width"],
            height=data["height"],
            num_inference_steps=data["num_inference_steps"],
            guidance_scale=float(data["guidance_scale"]),
            num_images_per_prompt=data["num_images_per_prompt"],
            generator=generator,
            **deadline,
        )
    return {"images": result.images, "prompt": data["prompt"]}


def output_fn(prediction, accept, context=None):
    images = prediction["images"]
    if accept == "image/png":
        if len(images) != 1:
            raise ValueError("image/png carries exactly one image; ask for application/json for several")
        return _png(images[0])
    if accept == "application/x-png-sequence":
        return b"".join(_png(image) for image in images)
    if accept == "application/json":
        encoded = [base64.b64encode(_png(image)).decode("ascii") for image in images]
        return json.dumps({"generated_images": encoded, "prompt": prediction["prompt"]})
    raise ValueError(f"accept type {accept!r} is not supported; use image/png, application/x-png-sequence or "
                     "application/json")


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
