"""Stable Diffusion text-to-image for the SageMaker Hugging Face inference container (toolkit hooks).

Request (application/json): {"inputs": "<prompt>", "parameters": {"negative_prompt", "width", "height",
"num_inference_steps", "guidance_scale", "seed", "num_images_per_prompt"}}.
Response: Accept image/png -> the PNG bytes of one image (no base64: a third smaller, nothing to decode);
Accept application/x-png-sequence -> the PNG files of every image back to back (PNG files delimit themselves), the
same saving for several images; Accept application/json -> {"generated_images": [<base64 PNG>, ...], "prompt": ...}
(the JumpStart shape).

The API validates requests before they get here; the bounds below protect the container from any other caller.
Local mode (local/) loads this same file through the same hooks.
"""

from __future__ import annotations

import base64
import io
import json
import os

import torch
from diffusers import DiffusionPipeline

MAX_SIZE = int(os.environ.get("SD_MAX_SIZE", "1024"))
MAX_STEPS = int(os.environ.get("SD_MAX_STEPS", "150"))
MAX_IMAGES = int(os.environ.get("SD_MAX_IMAGES", "8"))
SEED_MAX = 2**32 - 1
DEFAULTS = {"width": 512, "height": 512, "num_inference_steps": 30, "guidance_scale": 7.5, "num_images_per_prompt": 1}
PARAMETERS = set(DEFAULTS) | {"negative_prompt", "seed"}


def model_fn(model_dir, context=None):
    """Load the pipeline once per worker: half precision on GPU (half the memory, tensor cores), fp32 on CPU
    (fp16 is slow or unsupported there)."""
    cuda = torch.cuda.is_available()
    # torch_dtype, not dtype: the container pins diffusers 0.33, which does not know the newer name.
    pipe = DiffusionPipeline.from_pretrained(model_dir, torch_dtype=torch.float16 if cuda else torch.float32)
    pipe = pipe.to("cuda" if cuda else "cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def input_fn(input_data, content_type, context=None):
    if content_type != "application/json":
        raise ValueError(f"content type {content_type!r} is not supported; send application/json")
    if isinstance(input_data, (bytes, bytearray)):
        input_data = input_data.decode("utf-8")
    try:
        request = json.loads(input_data)
    except ValueError as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ValueError("body must be a JSON object")
    prompt = request.get("inputs")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("inputs must be a non-empty prompt string")
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError("parameters must be an object")
    unknown = sorted(set(parameters) - PARAMETERS)
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; allowed: {sorted(PARAMETERS)}")
    params = {**DEFAULTS, **parameters}
    for name in ("width", "height"):
        _check_int(params, name, 64, MAX_SIZE)
        if params[name] % 8:
            raise ValueError(f"{name} must be a multiple of 8")
    _check_int(params, "num_inference_steps", 1, MAX_STEPS)
    _check_int(params, "num_images_per_prompt", 1, MAX_IMAGES)
    scale = params["guidance_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 50:
        raise ValueError("guidance_scale must be a number from 0 to 50")
    if params.get("seed") is not None:
        _check_int(params, "seed", 0, SEED_MAX)
    negative = params.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise ValueError("negative_prompt must be a string")
    return {"prompt": prompt, **params}


def _check_int(params, name, low, high):
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")


def predict_fn(data, pipe, context=None):
    seed = data.get("seed")
    # A CPU generator gives the same latents on CPU and GPU, so a seed reproduces an image anywhere.
    generator = torch.Generator("cpu").manual_seed(seed) if seed is not None else None
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
