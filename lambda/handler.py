"""Lambda entry of the Model API: routes an API Gateway REST proxy event to its pipeline and writes one structured
log line per request. Everything that reaches AWS is created here, once per container."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

from model_api import aws, images
from model_api.errors import ApiError
from model_api.http import error_response, json_response
from model_api.schema import IMAGES_PATH

log = logging.getLogger("model_api")
log.setLevel(logging.INFO)

_ENV = os.environ
IMAGE_CONFIG = images.ImageConfig.from_env(_ENV)
ENDPOINT = aws.SageMakerEndpoint(aws.sagemaker_runtime_client(_ENV), _ENV["ENDPOINT_NAME"])
STORE = aws.S3ImageStore(aws.s3_client(_ENV), _ENV["BUCKET_NAME"])


def _images(event: dict, request_id: str) -> dict:
    return images.generate_images(event, IMAGE_CONFIG, ENDPOINT, STORE, request_id=request_id)


ROUTES = {IMAGES_PATH: _images}


def handler(event: dict, context) -> dict:
    started = time.monotonic()
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    route = event.get("resource") or event.get("path") or ""
    record = {"request_id": request_id, "method": event.get("httpMethod"), "route": route}
    try:
        pipeline = ROUTES.get(route)
        if pipeline is None:
            raise ApiError(404, "not_found", f"no route {route!r}")
        body = pipeline(event, request_id)
        response = json_response(200, body, {"X-Request-Id": request_id})
        record["images"] = len(body.get("images", []))
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
