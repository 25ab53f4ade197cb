"""API Gateway REST proxy responses in the API's one JSON shape."""

from __future__ import annotations

import json
from typing import Optional

from model_api.errors import ApiError, error_body

BASE_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def json_response(status: int, body: dict, headers: Optional[dict] = None) -> dict:
    return {
        "statusCode": status,
        "headers": {**BASE_HEADERS, **(headers or {})},
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(error: ApiError, request_id: Optional[str] = None) -> dict:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if request_id:
        headers["X-Request-Id"] = request_id
    return json_response(error.status, error_body(error.code, error.message), headers)
