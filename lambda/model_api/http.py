"""API Gateway REST proxy responses in the API's one JSON shape."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Binary:
    """A pipeline's answer that is bytes, not JSON (an image for Accept: image/png)."""

    data: bytes
    media_type: str
    headers: dict = field(default_factory=dict)  # what the answer says beside the bytes (X-Seed)


def binary_response(status: int, answer: Binary, headers: Optional[dict] = None) -> dict:
    """base64 in the proxy response: API Gateway sends the bytes when the request's first Accept type is one of the
    API's binaryMediaTypes (stacks/rest_api.py BINARY_MEDIA_TYPES; API Gateway Developer Guide, "Binary media types
    for REST APIs": Lambda proxy answers are base64 with isBase64Encoded, and the first Accept type decides)."""
    return {
        "statusCode": status,
        "headers": {**BASE_HEADERS, "Content-Type": answer.media_type, **answer.headers, **(headers or {})},
        "body": base64.b64encode(answer.data).decode("ascii"),
        "isBase64Encoded": True,
    }


def error_response(error: ApiError, request_id: Optional[str] = None, style: str = "api") -> dict:
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if request_id:
        headers["X-Request-Id"] = request_id
    return json_response(error.status, error_body(error.code, error.message, error.status, style), headers)
