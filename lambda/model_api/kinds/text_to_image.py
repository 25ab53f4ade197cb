"""Kind text-to-image: POST (or GET) /images {"prompt", ...} -> presigned URLs of the images, each stored in S3.

The pipeline: parse -> validate -> invoke -> store -> respond. Pure: AWS is reached only through the `Endpoint` and `ImageStore` objects passed in (model_api.aws implements them
with boto3), so every step can be tested without AWS and local mode runs the very same code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

from model_api.actions import Context
from model_api.adapters import openai
from model_api.calls import JSON, Endpoint, ModelCall, stop_if_abandoned
from model_api.errors import ApiError
from model_api.http import Binary
from model_api.jobs import JobRecord
from model_api.kinds.base import Action, Kind
from model_api.requests import read_json_body, validated
from model_api.schema import NOT_BLANK, SEED_MAX, SIZE_MULTIPLE, ImageLimits
from model_api.validation import shown

EXAMPLE = '{"prompt": "a cyborg tiger"}'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG = "image/png"
JPEG = "image/jpeg"
JUMPSTART_ACCEPT = "application/json;jpeg"
# Several PNG files back to back: our inference code's answer for several images (no base64, no JSON to parse).
PNG_SEQUENCE = "application/x-png-sequence"
# Longest presigned-URL lifetime. URLs are signed with the credentials of a read-only signer role (model_api.aws.
# UrlSigner), renewed so that they always outlive the URL; a role session assumed from the Lambda's own is role
# chaining, which AWS caps at 1 hour, and the signer renews TTL + 60 s before its session ends. 3000 s leaves every
# session at least 10 minutes of use before it is renewed.
MAX_URL_TTL_SECONDS = 3000
# The work model of one image request (see estimate_seconds): a fixed cost (text encoder, transfer) plus, per image,
# the denoising steps and about two steps' worth of VAE decoding and PNG encoding, scaled by pixels.
FIXED_SECONDS = 1.0
DECODE_STEPS = 2


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    negative_prompt: Optional[str]
    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: Optional[int]
    num_images: int


@dataclass(frozen=True)
class ImageConfig:
    """What the image route needs to know about its deployment (read from the Lambda environment)."""

    url_ttl_seconds: int = 900
    limits: ImageLimits = ImageLimits()
    key_prefix: str = "images/"
    # "toolkit": models/stable_diffusion/code/inference.py (raw PNG or JSON of PNGs); "jumpstart": a JumpStart
    # Stable Diffusion endpoint (its own request fields, JSON of JPEGs).
    protocol: str = "toolkit"
    # Seconds one 512x512 denoising step takes on the model's instance (deployment/model_catalog.STEP_SECONDS_512);
    # None: unknown (an existing endpoint), no work bound.
    step_seconds: Optional[float] = None
    # What a request may take on the model: the endpoint read timeout. A request estimated above it is refused.
    time_budget_seconds: float = 22.0
    instance_type: str = ""

    def to_env(self) -> dict[str, str]:
        """The Lambda environment that from_env reads back (used by the CDK app and local mode)."""
        env = {
            "URL_TTL_SECONDS": str(self.url_ttl_seconds),
            "REQUEST_LIMITS": self.limits.to_json(),
            "IMAGE_KEY_PREFIX": self.key_prefix,
            "MODEL_PROTOCOL": self.protocol,
            "IMAGE_TIME_BUDGET_SECONDS": f"{self.time_budget_seconds:g}",
        }
        if self.step_seconds is not None:
            env.update({"IMAGE_STEP_SECONDS": f"{self.step_seconds:g}", "INSTANCE_TYPE": self.instance_type})
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ImageConfig":
        step = env.get("IMAGE_STEP_SECONDS")
        return cls(
            url_ttl_seconds=int(env.get("URL_TTL_SECONDS", "900")),
            limits=ImageLimits.from_env(env),
            key_prefix=env.get("IMAGE_KEY_PREFIX", "images/"),
            protocol=env.get("MODEL_PROTOCOL", "toolkit"),
            step_seconds=float(step) if step else None,
            time_budget_seconds=float(env.get("IMAGE_TIME_BUDGET_SECONDS", "22")),
            instance_type=env.get("INSTANCE_TYPE", ""),
        )


class ImageStore(Protocol):
    def presign(self, key: str, ttl_seconds: int) -> tuple[str, datetime]:
        """A GET URL for key and the instant it stops working (exactly: signed with credentials that outlive it).
        Raises ApiError."""

    def put_all(self, objects: Sequence[tuple[str, bytes]], content_type: str) -> None:
        """Store every object or none of them (what was stored is removed again on failure). Raises ApiError."""


@lru_cache(maxsize=None)  # built once per set of limits; callers only read it
def image_request_schema(limits: ImageLimits) -> dict:
    """JSON schema (draft 4, the dialect API Gateway models use) of the POST /images body."""
    size = {
        "type": "integer",
        "minimum": limits.min_size,
        "maximum": limits.max_size,
        "multipleOf": SIZE_MULTIPLE,
    }
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "ImageRequest",
        "type": "object",
        "properties": {
            # A prompt of only blank characters is as empty as "" to the model.
            "prompt": {"type": "string", "minLength": 1, "maxLength": limits.max_prompt_chars,
                       "pattern": NOT_BLANK},
            "negative_prompt": {"type": "string", "maxLength": limits.max_prompt_chars},
            "width": dict(size),
            "height": dict(size),
            "steps": {"type": "integer", "minimum": 1, "maximum": limits.max_steps},
            "guidance_scale": {"type": "number", "minimum": 0, "maximum": limits.max_guidance_scale},
            "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX},
            "num_images": {"type": "integer", "minimum": 1, "maximum": limits.max_images},
        },
        "required": ["prompt"],
        "additionalProperties": False,
    }


def max_body_bytes(limits: ImageLimits) -> int:
    """Largest request body worth parsing: two prompts of JSON-escaped astral characters (12 bytes each) plus room
    for the other fields. Anything larger is refused with 413 before it is parsed."""
    return 4096 + 2 * 12 * limits.max_prompt_chars


# ---------------------------------------------------------------------------------------------------------- parse


# Names other clients give the same fields, accepted as they are (docs/api.md): JumpStart's
# Stable Diffusion endpoints and diffusers call steps and images num_inference_steps and num_images_per_prompt; the
# Hugging Face inference style sends the prompt as "inputs" and everything else inside "parameters".
FIELD_ALIASES = {"num_inference_steps": "steps", "num_images_per_prompt": "num_images"}


def canonical_fields(data: Any) -> Any:
    """A request body in any accepted shape -> the API's own field names, or 400 naming each conflict (a field
    given twice under two names would leave which one counts to chance)."""
    if not isinstance(data, dict):
        return data  # the schema says what is wrong with it
    out, problems = dict(data), []
    if "inputs" in out:
        if "prompt" in out:
            problems.append("send the prompt as prompt or as inputs (Hugging Face style), not both")
        out["prompt"] = out.pop("inputs")
        parameters = out.pop("parameters", {})
        if not isinstance(parameters, dict):
            problems.append("parameters must be an object of the other fields")
            parameters = {}
        for name, value in parameters.items():
            if name in out:
                problems.append(f"{name} is given twice, at the top and in parameters; send it once")
            out[name] = value
    elif "parameters" in out:
        problems.append('parameters go with inputs (Hugging Face style: {"inputs": "a cat", "parameters": '
                        '{"num_inference_steps": 20}}); or send every field at the top')
    for alias, name in FIELD_ALIASES.items():
        if alias in out:
            if name in out:
                problems.append(f"{alias} and {name} are the same field; send one")
            out[name] = out.pop(alias)
    if problems:
        raise ApiError(400, "invalid_request", "; ".join(problems))
    return out


def parse_image_request(event: Mapping, limits: ImageLimits) -> ImageRequest:
    """Turn an API Gateway REST proxy event into a validated ImageRequest, or raise ApiError(4xx)."""
    method = (event.get("httpMethod") or "").upper()
    schema = image_request_schema(limits)
    data: Any
    if method == "POST":
        data = canonical_fields(read_json_body(event, max_body_bytes(limits), EXAMPLE))
    elif method == "GET":
        data = _query_fields(canonical_fields(dict(event.get("queryStringParameters") or {})), schema)
    else:
        raise ApiError(405, "method_not_allowed", f"method {method or '(none)'} is not allowed; use GET or POST")
    data = validated(data, schema)
    return ImageRequest(
        prompt=data["prompt"],
        # Blank-looking (white space, zero-width characters) is no negative prompt, as "" is: nothing to steer from.
        negative_prompt=data["negative_prompt"] if re.match(NOT_BLANK, data.get("negative_prompt") or "") else None,
        width=data.get("width", limits.default_size),
        height=data.get("height", limits.default_size),
        steps=data.get("steps", limits.default_steps),
        guidance_scale=float(data.get("guidance_scale", limits.default_guidance_scale)),
        seed=data.get("seed"),
        num_images=data.get("num_images", 1),
    )


def estimate_seconds(request: ImageRequest, step_seconds: float) -> float:
    """Seconds the model needs for a request, from the documented cost of one 512x512 step on its instance."""
    scale = request.width * request.height / (512 * 512)
    return FIXED_SECONDS + request.num_images * scale * step_seconds * (request.steps + DECODE_STEPS)


def check_work(request: ImageRequest, config: ImageConfig) -> None:
    """Refuse (400) a request that cannot finish in the time the API gives the model: the gateway would cut it off
    and the GPU would still spend the time."""
    if config.step_seconds is None:
        return
    needed = estimate_seconds(request, config.step_seconds)
    if needed > config.time_budget_seconds:
        on = f" on {config.instance_type}" if config.instance_type else ""
        raise ApiError(400, "request_too_heavy",
                       f"{request.num_images} image(s) of {request.width}x{request.height} with {request.steps} "
                       f"steps take about {needed:.0f} s{on}, and a request must finish within "
                       f"{config.time_budget_seconds:.0f} s; lower steps, width/height or num_images")


# Query-string numbers as JSON writes them, ASCII only: Python's int() and float() also take "2_56", " 256 " and
# digits of other scripts ("２５６"), which no other client or gateway reads as 256.
QUERY_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)\Z", re.ASCII)
QUERY_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z", re.ASCII)


def _query_fields(params: Mapping[str, str], schema: dict) -> dict:
    """Query strings are text: convert each known field to the type the schema asks for, so GET and POST are
    validated by one schema. Unknown names stay as they are and the schema reports them."""
    out: dict = {}
    problems = []
    for name, value in params.items():
        kind = schema["properties"].get(name, {}).get("type")
        if kind == "integer":
            if QUERY_INTEGER.match(value):
                out[name] = int(value)
            else:
                problems.append(f"{name} must be an integer in plain digits (got {shown(value)})")
        elif kind == "number":
            number = float(value) if QUERY_NUMBER.match(value) else float("nan")
            if number != number or number in (float("inf"), float("-inf")):
                problems.append(f"{name} must be a number in plain digits (got {shown(value)})")
            else:
                out[name] = number
        else:
            out[name] = value
    if problems:
        raise ApiError(400, "invalid_request", "; ".join(problems))
    return out


# ---------------------------------------------------------------------------------------------------------- invoke


def model_request(request: ImageRequest, seed: int, protocol: str = "toolkit") -> tuple[bytes, str]:
    """The body sent to the model container and the Accept type.

    Our inference code (models/stable_diffusion/code/inference.py) answers raw PNG bytes: one file, or several back
    to back (no base64: a quarter fewer bytes, and no JSON to parse or base64 to decode in the Lambda). A JumpStart
    endpoint takes its own field names and answers JSON with base64 JPEGs.
    """
    if protocol == "jumpstart":
        fields = {"prompt": request.prompt, "width": request.width, "height": request.height,
                  "num_images_per_prompt": request.num_images, "num_inference_steps": request.steps,
                  "guidance_scale": request.guidance_scale, "seed": seed}
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        return json.dumps(fields, separators=(",", ":")).encode(), JUMPSTART_ACCEPT
    parameters: dict[str, object] = {
        "width": request.width,
        "height": request.height,
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance_scale,
        "seed": seed,
        "num_images_per_prompt": request.num_images,
    }
    if request.negative_prompt:
        parameters["negative_prompt"] = request.negative_prompt
    body = json.dumps({"inputs": request.prompt, "parameters": parameters}, separators=(",", ":")).encode()
    return body, PNG if request.num_images == 1 else PNG_SEQUENCE


def decode_model_images(body: bytes, content_type: str, expected: int) -> tuple[list[bytes], str]:
    """The images in a model response and their media type, checked: anything else is the model's fault (502),
    never stored. Raw PNG, or JSON {"generated_images": [base64 PNG or JPEG, ...]}."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == PNG:
        images = [body]
    elif media_type == PNG_SEQUENCE:
        images = split_png_sequence(body)
    elif media_type == JSON:
        try:
            encoded = json.loads(body)["generated_images"]
            images = [base64.b64decode(item, validate=True) for item in encoded]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise ApiError(502, "bad_model_response", "the model returned JSON without valid generated_images")
    else:
        raise ApiError(502, "bad_model_response", f"the model returned {content_type or 'no content type'}, "
                                                  "not images")
    if len(images) != expected:
        raise ApiError(502, "bad_model_response", f"the model returned {len(images)} images, expected {expected}")
    kinds = {PNG if is_complete_png(i) else JPEG if is_complete_jpeg(i) else None for i in images}
    made = kinds.pop() if len(kinds) == 1 else None
    if made is None:
        raise ApiError(502, "bad_model_response", "the model returned a truncated or unknown image")
    return images, made


def split_png_sequence(data: bytes) -> list[bytes]:
    """PNG files back to back -> each file, by walking the chunks (length, type, data, CRC) to each IEND. A body
    that does not parse that way is the model's fault (502)."""
    images, start = [], 0
    while start < len(data):
        if data[start:start + 8] != PNG_SIGNATURE:
            raise ApiError(502, "bad_model_response", "the model returned a PNG sequence that is not PNG files")
        position = start + 8
        while True:
            if position + 12 > len(data):
                raise ApiError(502, "bad_model_response", "the model returned a truncated PNG sequence")
            length = int.from_bytes(data[position:position + 4], "big")
            kind = data[position + 4:position + 8]
            position += 12 + length
            if kind == b"IEND":
                break
        if position > len(data):
            raise ApiError(502, "bad_model_response", "the model returned a truncated PNG sequence")
        images.append(data[start:position])
        start = position
    return images


def is_complete_jpeg(data: bytes) -> bool:
    """JPEG start-of-image and end-of-image markers: catches truncated bodies."""
    return len(data) > 4 and data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"


def is_complete_png(data: bytes) -> bool:
    """PNG signature at the start and the IEND chunk (with its CRC) at the end: catches truncated bodies."""
    return len(data) > 57 and data.startswith(PNG_SIGNATURE) and data[-12:-8] == b"\x00\x00\x00\x00" and \
        data[-8:-4] == b"IEND"


# ---------------------------------------------------------------------------------------------------------- store


def image_key(prefix: str, when: datetime, unique: str, extension: str = "png") -> str:
    """images/YYYY/MM/DD/<uuid4>.png: the date groups objects for people and lifecycle rules, the uuid4 makes keys
    unique under any concurrency (timestamps collide)."""
    return f"{prefix}{when:%Y/%m/%d}/{unique}.{extension}"


# ---------------------------------------------------------------------------------------------------------- respond


def prepare_images(event: Mapping, config: ImageConfig,
                   new_seed: Callable[[], int] = lambda: secrets.randbelow(SEED_MAX + 1)) -> tuple[ImageRequest, ModelCall]:
    """Parse, validate and bound an image request; the model call it makes (the same for a job and a request)."""
    request = parse_image_request(event, config.limits)
    check_work(request, config)
    seed = request.seed if request.seed is not None else new_seed()
    body, accept = model_request(request, seed, config.protocol)
    return request, ModelCall(body, JSON, accept, {"seed": seed, "num_images": request.num_images})


def image_entries(keys: Sequence[str], signed: Sequence[tuple[str, datetime]]) -> list[dict]:
    return [{"url": url, "key": key, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
            for key, (url, expires) in zip(keys, signed)]


def generate_images(
    event: Mapping,
    config: ImageConfig,
    endpoint: Endpoint,
    store: ImageStore,
    *,
    request_id: str,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    new_unique: Callable[[], str] = lambda: str(uuid.uuid4()),
    new_seed: Callable[[], int] = lambda: secrets.randbelow(SEED_MAX + 1),
) -> dict:
    """The whole image route: returns the response body of a 200, or raises ApiError. Nothing is stored unless
    every image is valid, and no URL is returned unless every object was stored."""
    request, call = prepare_images(event, config, new_seed)
    response_body, response_type = endpoint.invoke(call.body, call.content_type, call.accept)
    images, media_type = decode_model_images(response_body, response_type, call.meta["num_images"])
    stop_if_abandoned()  # a stream's caller that hung up while the model worked gets nothing stored
    issued = now()
    extension = "png" if media_type == PNG else "jpg"
    keys = [image_key(config.key_prefix, issued, new_unique(), extension) for _ in images]
    # Presign first: it is local computation, so a failure here leaves nothing stored.
    signed = [store.presign(key, config.url_ttl_seconds) for key in keys]
    store.put_all(list(zip(keys, images)), media_type)
    return {"images": image_entries(keys, signed), "prompt": request.prompt, "seed": call.meta["seed"],
            "request_id": request_id}


def accepted_image_type(event: Mapping) -> Optional[str]:
    """The image type a request asks for with its first Accept media type (what huggingface_hub's text_to_image
    sends: Accept: image/png), else None (JSON with URLs). The first one only: API Gateway decides whether to send
    a base64 answer as bytes by the first Accept type alone."""
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    first = str(headers.get("accept") or "").split(",")[0].split(";")[0].strip().lower()
    return first if first in (PNG, JPEG) else None


def image_answer(event: Mapping, config: ImageConfig, endpoint: Endpoint, media_type: str,
                 new_seed: Callable[[], int] = lambda: secrets.randbelow(SEED_MAX + 1)) -> tuple[bytes, int]:
    """The image itself, for Accept: image/png (or image/jpeg): nothing is stored, no URL is made. (bytes, seed)."""
    request, call = prepare_images(event, config, new_seed)
    made = JPEG if config.protocol == "jumpstart" else PNG  # known before the model runs
    if media_type != made:
        raise ApiError(406, "not_acceptable", f"this model makes {made} images; send Accept: {made}, or "
                                              "application/json for presigned URLs")
    if request.num_images != 1:
        raise ApiError(400, "invalid_request", f"Accept: {media_type} answers one image; ask for num_images 1, or "
                                               "accept application/json for the URLs of several")
    response_body, response_type = endpoint.invoke(call.body, call.content_type, call.accept)
    images, _ = decode_model_images(response_body, response_type, 1)
    return images[0], call.meta["seed"]


# ---------------------------------------------------------------------------------------------------------- jobs


def store_job_images(record: JobRecord, answer: bytes, load_input: Callable[[], bytes], config: ImageConfig,
                     store: ImageStore) -> dict:
    """An async job's answer -> its images stored as objects of their own, under keys made from the job id (so a
    repeated poll writes the same objects, never more); the result names them, with the prompt the job asked for."""
    images, media_type = decode_model_images(answer, record.accept, record.meta["num_images"])
    day = record.created_at[:10].replace("-", "/")
    extension = "png" if media_type == PNG else "jpg"
    keys = [f"{config.key_prefix}{day}/{record.job_id}-{i}.{extension}" for i in range(len(images))]
    store.put_all(list(zip(keys, images)), media_type)
    return {"keys": keys, "prompt": json.loads(load_input())["inputs"], "seed": record.meta["seed"]}


def job_images_body(record: JobRecord, result: dict, config: ImageConfig, store: ImageStore) -> dict:
    """A finished image job's body: the synchronous route's, with URLs signed now (each poll gets fresh ones)."""
    signed = [store.presign(key, config.url_ttl_seconds) for key in result["keys"]]
    return {"images": image_entries(result["keys"], signed), "prompt": result["prompt"], "seed": result["seed"],
            "request_id": record.request_id}


# ---------------------------------------------------------------------------------------------------------- kind


def run_images(event: Mapping, context: Context, request_id: str, negotiate: bool = True):
    """The image action's run: the image itself when the request accepts image/png (or image/jpeg) and negotiate,
    else stored and answered with presigned URLs."""
    media_type = accepted_image_type(event) if negotiate else None
    if media_type is not None:
        data, seed = image_answer(event, context.config, context.endpoint, media_type)
        return Binary(data, media_type, {"X-Seed": str(seed)})
    return generate_images(event, context.config, context.endpoint, context.image_store, request_id=request_id)


def progress_estimate(event: Mapping, config: ImageConfig) -> Optional[float]:
    """Seconds an image request should take (None: no step time known); refuses it now, before a stream begins."""
    request, _ = prepare_images(event, config)
    return estimate_seconds(request, config.step_seconds) if config.step_seconds is not None else None


def images_made(body: Any, action: Optional[Action]) -> Optional[int]:
    """Images an answer made: ours name them under images, OpenAI's (an adapted route) under data."""
    if not isinstance(body, dict):
        return None
    made = body.get("images") or (body.get("data") if action is not None and action.adapter else None)
    return len(made) if isinstance(made, list) else None


def check_images(answer: dict, fetch: Callable[[str], bytes]) -> str:
    """The smoke test's check: one image, and its URL serves a complete PNG or JPEG."""
    images = answer.get("images") or []
    if len(images) != 1:
        return f"expected 1 image, got {len(images)}"
    for image in images:
        data = fetch(image["url"])
        if not (is_complete_png(data) or is_complete_jpeg(data)):
            return f"{image['key']} is not a complete PNG/JPEG ({len(data)} bytes)"
    return ""


IMAGES = Action(
    "images", EXAMPLE, lambda event, config: prepare_images(event, config)[1], None,
    smoke={"prompt": "a red apple on a wooden table", "width": 256, "height": 256, "steps": 4, "seed": 7},
    smoke_invalid={"prompt": "x", "width": 100000},
    check=check_images,
    methods=("GET", "POST"),
    schema=lambda config: image_request_schema(config.limits),
    run=run_images,
    finish_job=lambda record, answer, load_input, context: store_job_images(
        record, answer, load_input, context.config, context.image_store),
    job_body=lambda record, result, context: job_images_body(record, result, context.config, context.image_store),
    progress=progress_estimate,
    response={"type": "object", "required": ["images", "prompt", "seed", "request_id"], "properties": {
        "images": {"type": "array", "items": {"type": "object", "required": ["url", "key", "expires_at"],
                                              "properties": {"url": {"type": "string", "description": "presigned GET"},
                                                             "key": {"type": "string"},
                                                             "expires_at": {"type": "string"}}}},
        "prompt": {"type": "string"}, "seed": {"type": "integer"}, "request_id": {"type": "string"}}},
)

V1_IMAGES = openai.images_action(IMAGES, lambda config: max_body_bytes(config.limits))  # /v1/images/generations

KIND = Kind(
    "text-to-image", (IMAGES, V1_IMAGES), protocols=("toolkit", "jumpstart"),
    # A JumpStart endpoint speaks its own request format; ours is models/stable_diffusion/code.
    default_protocol=lambda model: "jumpstart" if model.existing_endpoint is not None else "toolkit",
    # Invocations per instance per minute: about half of what one serves flat out (an image at 30 steps takes ~3 s
    # on a g5, ~20/min), so a second instance starts before requests queue; jobs waiting per instance for async.
    target_invocations=10.0, target_backlog=5.0,
    stores_images=True, config_type=ImageConfig, made_images=images_made,
    # models/stable_diffusion/code's bounds. The Lambda stops waiting after its read timeout; the model stops
    # denoising then too, so an abandoned request does not hold the single worker.
    container_environment=lambda settings, model, request_seconds: {
        "SD_MAX_SIZE": str(settings.max_size), "SD_MAX_STEPS": str(settings.max_steps),
        "SD_MAX_IMAGES": str(settings.max_images), "REQUEST_DEADLINE_SECONDS": str(request_seconds)},
    local_stand_in=lambda model: "stable-diffusion",
)
