"""Lambda entry of the Model API: one function per model. Routes an API Gateway REST proxy event to its pipeline
and writes one structured log line per request. Everything that reaches AWS is created here, once per container.

Environment: MODEL_NAME, MODEL_KIND, ENDPOINT_NAME, MODEL_CATALOG (all models, for routing and GET /endpoint),
BUCKET_NAME and SIGNER_ROLE_ARN (image models), and each pipeline's own settings (model_api.images / model_api.text).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

from model_api import aws, images, routes, text
from model_api.errors import ApiError
from model_api.http import error_response, json_response

log = logging.getLogger("model_api")
log.setLevel(logging.INFO)

_ENV = os.environ
MODEL = routes.ModelInfo(
    name=_ENV.get("MODEL_NAME", "stable-diffusion"),
    kind=_ENV.get("MODEL_KIND", "text-to-image"),
    endpoint_name=_ENV["ENDPOINT_NAME"],
)
CATALOG = routes.catalog_from_env(_ENV) or [MODEL]
REGION = _ENV.get("AWS_REGION", "us-east-1")
ENDPOINT = aws.SageMakerEndpoint(aws.sagemaker_runtime_client(_ENV), MODEL.endpoint_name,
                                 inputs_only_fail_400=_ENV.get("MODEL_PROTOCOL") == "pipeline")
if MODEL.kind == "text-to-image":
    IMAGE_CONFIG = images.ImageConfig.from_env(_ENV)
    _ENV["SIGNER_ROLE_ARN"]  # required: a deployment error shows at init, not at the first request
    # URLs are signed as the read-only signer role, whose sessions outlive every URL (model_api.aws.UrlSigner); its
    # clients are built in the background, after this one, while the first request waits on the model.
    STORE = aws.S3ImageStore(aws.s3_client(_ENV), _ENV["BUCKET_NAME"],
                             signing=aws.Deferred(lambda env=dict(_ENV): aws.url_signing(
                                 env, IMAGE_CONFIG.url_ttl_seconds)))
else:
    TEXT_CONFIG = text.TextConfig.from_env(_ENV)


def _images(event: dict, request_id: str) -> dict:
    return images.generate_images(event, IMAGE_CONFIG, ENDPOINT, STORE, request_id=request_id)


def _generate(event: dict, request_id: str) -> dict:
    return text.generate_text(event, TEXT_CONFIG, ENDPOINT, request_id=request_id)


def _embeddings(event: dict, request_id: str) -> dict:
    return text.embed(event, TEXT_CONFIG, ENDPOINT, request_id=request_id)


def _chat(event: dict, request_id: str) -> dict:
    return text.chat(event, TEXT_CONFIG, ENDPOINT, request_id=request_id)


def _endpoint(event: dict, request_id: str) -> dict:
    info = next((m for m in CATALOG if m.name == MODEL.name), MODEL)
    return info.describe(REGION)


def _catalog(event: dict, request_id: str) -> dict:
    return {"endpoints": [m.describe(REGION) for m in CATALOG]}


PIPELINES = {"images": _images, "generate": _generate, "embeddings": _embeddings, "chat": _chat,
             "endpoint": _endpoint, "catalog": _catalog}
# (path, method) -> action, for the routes this model serves.
ROUTES = {(r.path, r.method): r.action for r in routes.routes(CATALOG) if r.model == MODEL.name}


def _route(event: dict):
    path, method = event.get("resource") or event.get("path") or "", (event.get("httpMethod") or "").upper()
    action = ROUTES.get((path, method))
    if action is not None:
        return PIPELINES[action]
    allowed = sorted(m for p, m in ROUTES if p == path)
    if allowed:
        raise ApiError(405, "method_not_allowed", f"method {method or '(none)'} is not allowed on {path}; "
                                                  f"use {' or '.join(allowed)}")
    raise ApiError(404, "not_found", f"no route {path!r}")


def handler(event: dict, context) -> dict:
    started = time.monotonic()
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    record = {"request_id": request_id, "model": MODEL.name, "method": event.get("httpMethod"),
              "route": event.get("resource") or event.get("path")}
    try:
        body = _route(event)(event, request_id)
        response = json_response(200, body, {"X-Request-Id": request_id})
        if "images" in body:
            record["images"] = len(body["images"])
    except ApiError as error:
        response = error_response(error, request_id)
        record["error_code"] = error.code
        if error.__cause__ is not None:
            record["cause"] = type(error.__cause__).__name__
    except Exception:  # a bug, not a user error: log the traceback, tell the caller nothing internal
        log.exception("unhandled error in request %s", request_id)
        response = error_response(ApiError(500, "internal_error", "unexpected error; quote the X-Request-Id "
                                                                   "header when reporting it"), request_id)
        record["error_code"] = "internal_error"
    record["status"] = response["statusCode"]
    record["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    log.info(json.dumps(record, separators=(",", ":")))
    return response
