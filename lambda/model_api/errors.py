"""The one error shape of the API: every non-2xx body is {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import json
from typing import Optional


class ApiError(Exception):
    """An error the API answers with: an HTTP status, a stable machine code and a human message."""

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[int] = None,
                 headers: Optional[dict] = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers or {})  # what the answer says beside the body (Allow on a 405)


def error_body(code: str, message: str, status: Optional[int] = None, style: str = "api") -> dict:
    """style "openai" (the /v1 routes, model_api.adapters.openai): also OpenAI's type and param, so its SDK and its
    users read the error as OpenAI's own."""
    error: dict[str, Optional[str]] = {"code": code, "message": message}
    if style == "openai":
        error.update(type=openai_error_type(status or 500), param=None)
    return {"error": error}


def openai_error_type(status: int) -> str:
    """OpenAI's error type for a status (its API reference, Error codes)."""
    named = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
    return named.get(status, "invalid_request_error" if status < 500 else "server_error")


def gateway_response_template(code: str) -> str:
    """Body template of an API Gateway gateway response in the same shape.

    Gateway response templates only substitute variables (no VTL, no escaping helpers), so the message comes from
    $context.error.messageString, which API Gateway already emits as a quoted, escaped JSON string.
    """
    prefix = json.dumps({"error": {"code": code, "message": "__MESSAGE__"}}, separators=(",", ":"))
    return prefix.replace('"__MESSAGE__"', "$context.error.messageString")


# Every status an error of the API can have, with who answers it (the README's error table has each code): the
# OpenAPI document lists them on every operation.
ERROR_STATUSES = {
    400: "The request is invalid: the message names every problem (Lambda), or the gateway refused its body",
    401: "No API key or token at all (API Gateway; with bearer_keys or auth=cognito)",
    403: "Wrong API key, or a signature or token API Gateway refuses (API Gateway)",
    404: "No such route, job or model (model_not_found on /v1); the message lists the routes",
    405: "The path has no such method; the Allow header lists the methods it has",
    406: "Accept asks for an image type the model does not make",
    413: "The body is over the request limit",
    415: "The gateway could not read the body's media type (API Gateway)",
    429: "Throttled: the usage plan's rate or daily quota, or the endpoint itself; Retry-After says when",
    500: "A deployment error or a bug: quote the X-Request-Id header",
    502: "The model failed, returned no valid answer, or the Lambda itself failed",
    503: "The endpoint or storage is not available right now; Retry-After says when",
    504: "The model did not answer in time, or the integration timed out",
}

# Errors raised by API Gateway itself, before the Lambda runs: response type -> (status, code).
# The deployed stage (gateway responses) and local mode both use this table.
GATEWAY_ERRORS = {
    "BAD_REQUEST_BODY": (400, "invalid_request"),
    "BAD_REQUEST_PARAMETERS": (400, "invalid_request"),
    "UNAUTHORIZED": (401, "unauthorized"),
    "INVALID_API_KEY": (403, "forbidden"),
    "ACCESS_DENIED": (403, "forbidden"),
    # API Gateway's answer to a request that is not signed with auth=iam (and, without a route for every path, to a
    # path the API lacks: every path has one here, stacks/rest_api.py add_fallback).
    "MISSING_AUTHENTICATION_TOKEN": (403, "forbidden"),
    "RESOURCE_NOT_FOUND": (404, "not_found"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "unsupported_media_type"),
    "REQUEST_TOO_LARGE": (413, "request_too_large"),
    "THROTTLED": (429, "throttled"),
    "QUOTA_EXCEEDED": (429, "quota_exceeded"),
    "INTEGRATION_TIMEOUT": (504, "timeout"),
    "INTEGRATION_FAILURE": (502, "integration_failure"),
    "DEFAULT_4XX": (400, "bad_request"),
    "DEFAULT_5XX": (500, "internal_error"),
}
