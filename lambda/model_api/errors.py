"""The one error shape of the API: every non-2xx body is {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


def internal_error() -> ApiError:
    """What the caller is told of a bug: nothing internal, only how to find it in the logs."""
    return ApiError(500, "internal_error", "unexpected error; quote the X-Request-Id header when reporting it")


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


def gateway_response_template(code: str, message: Optional[str] = None) -> str:
    """Body template of an API Gateway gateway response in the same shape.

    Gateway response templates only substitute variables (no VTL, no escaping helpers), so the message comes from
    $context.error.messageString, which API Gateway already emits as a quoted, escaped JSON string; or, given, a
    message of ours, fixed.
    """
    if message is not None:
        return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
    prefix = json.dumps({"error": {"code": code, "message": "__MESSAGE__"}}, separators=(",", ":"))
    return prefix.replace('"__MESSAGE__"', "$context.error.messageString")


# What a caller without the right API key is told (auth=api_key), instead of API Gateway's bare "Unauthorized" and
# "Forbidden": how to send the key. The deployed gateway responses and local mode say the same.
KEY_MESSAGES = {
    "UNAUTHORIZED": "no API key: send it in the x-api-key header (or as Authorization: Bearer <key>)",
    "INVALID_API_KEY": "no API key, or not this API's: send this deployment's key in the x-api-key header (make "
                       "deploy prints how to read it; local mode prints it at start)",
}


# Every status an error of the API can have, with who answers it (docs/errors.md, from ERROR_CATALOG below, has each code): the
# OpenAPI document lists them on every operation.
ERROR_STATUSES = {
    400: "The request is invalid: the message names every problem (Lambda), or the gateway refused its body",
    401: "No API key or token at all (API Gateway; with bearer_keys or auth=cognito)",
    403: "Wrong API key, or a signature or token API Gateway refuses (API Gateway)",
    404: "No such route, job or model (model_not_found on /v1); the message lists the routes",
    405: "The path has no such method; the Allow header lists the methods it has",
    406: "Accept asks for an image type the model does not make",
    408: "The whole request did not arrive in time (the HTTP server, before any route runs)",
    411: "A body sent without a Content-Length (chunked): refused by the HTTP server",
    413: "The body is over the request limit",
    414: "The request line (path and query string) is too long: refused by the HTTP server",
    415: "The gateway could not read the body's media type (API Gateway)",
    429: "Throttled: the usage plan's rate or daily quota, or the endpoint itself; Retry-After says when",
    431: "The request headers are too large: refused by the HTTP server",
    500: "A deployment error or a bug: quote the X-Request-Id header",
    502: "The model failed, returned no valid answer, or the Lambda itself failed",
    503: "The endpoint or storage is not available right now; Retry-After says when",
    504: "The model did not answer in time, or the integration timed out",
    505: "The HTTP version is not 1.0 or 1.1: refused by the HTTP server",
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


@dataclass(frozen=True)
class ErrorDoc:
    """One row of the error catalog (docs/errors.md, written from this by `python -m ops.docs`): a status, the codes
    answered with it, who answers (API Gateway itself, before any code runs, or the model's Lambda) and when. A row
    whose `when` says "not in local mode" is one a laptop cannot produce."""

    status: int
    codes: tuple[str, ...]
    source: str  # "API Gateway" | "Lambda" | "local mode" (its HTTP server, where API Gateway's front door is)
    when: str
    joiner: str = ", "  # how the codes are listed: alternatives ("/") or a family (",")


# Every error the deployed API answers (the tests check each ApiError the Lambda code raises, and each gateway
# response, against it, and the page against it).
ERROR_CATALOG: tuple[ErrorDoc, ...] = (
    ErrorDoc(400, ('invalid_request',), 'Lambda',
             'body not JSON (or a key twice in one object), missing or empty fields, wrong types, values out of '
             'bounds, unknown fields, text that is blank (white space and invisible characters only) or not valid '
             'text (an unpaired UTF-16 surrogate such as `\\ud800`), query numbers not in plain ASCII digits; the '
             'message lists every problem, whatever the `Content-Type`'),
    ErrorDoc(400, ('streaming_off',), 'Lambda',
             '`stream: true` to a model deployed without `streaming=true` (see [Streaming](#streaming))'),
    ErrorDoc(400, ('request_too_heavy',), 'Lambda',
             'an image request that cannot finish in the time a request has on this instance (see [The '
             'API](#the-api))'),
    ErrorDoc(400, ('model_rejected_input',), 'Lambda',
             "the model refused the input: TGI's 422 (e.g. too many input tokens), our inference code's marked 400 "
             "(e.g. a conversation longer than the model takes), or a pipeline model's 400; the message quotes the "
             'model (a bare 400 from the inference toolkit running our code, which it also answers for its own '
             'faults, stays a 502)'),
    ErrorDoc(401, ('unauthorized',), 'API Gateway',
             'no API key at all (with `bearer_keys`, the default: neither `x-api-key` nor `Authorization: Bearer`), '
             'or no Cognito token'),
    ErrorDoc(403, ('forbidden',), 'API Gateway',
             'wrong API key (missing too with `bearer_keys=false`), or a SigV4 signature or token API Gateway '
             'refuses (`auth=iam`: an unsigned request, "Missing Authentication Token")'),
    ErrorDoc(404, ('not_found',), 'Lambda',
             'no such route (asked with a valid key: every path is a method of the API, behind the same key); the '
             'message lists the routes there are'),
    ErrorDoc(405, ('method_not_allowed',), 'Lambda',
             "the path is a route's, without this method; the `Allow` header and the message list the methods it "
             'has'),
    ErrorDoc(404, ('model_not_found',), 'Lambda',
             "a `/v1` request names a model other than the route's (the message says where that one answers)"),
    ErrorDoc(404, ('job_not_found',), 'Lambda',
             'GET /jobs/<job_id> (an async model) for an id no job has: job ids are 128 random bits, the only handle '
             'on a job'),
    ErrorDoc(406, ('not_acceptable',), 'Lambda',
             '`Accept: image/jpeg` (or `image/png`) for a model that makes the other type'),
    ErrorDoc(413, ('request_too_large',), 'Lambda',
             'body over the request limit (28 KB with the default image limits); API Gateway answers bodies over '
             'its 10 MB payload limit the same way, and so does local mode, from the `Content-Length` alone'),
    ErrorDoc(429, ('throttled', 'quota_exceeded'), 'API Gateway',
             'usage-plan rate or daily quota hit, `Retry-After` (not in local mode)',
             joiner=' / '),
    ErrorDoc(429, ('throttled',), 'Lambda',
             'the endpoint throttles, `Retry-After` (not in local mode)'),
    ErrorDoc(500, ('misconfigured', 'presign_failed', 'internal_error'), 'Lambda',
             'a deployment error (`misconfigured`, `presign_failed`: not in local mode) or a bug (`internal_error`: '
             'quote the `X-Request-Id` header)',
             joiner=' / '),
    ErrorDoc(502, ('model_error', 'bad_model_response', 'model_connection_lost', 'model_unavailable'), 'Lambda',
             'the container failed (message carries its status), returned no valid answer, or the connection broke'),
    ErrorDoc(502, ('integration_failure',), 'API Gateway',
             'the Lambda itself failed (in local mode: a streamed answer that came without its head)'),
    ErrorDoc(503, ('endpoint_unavailable',), 'Lambda',
             'the endpoint is missing, not in service or not ready, or a shared model scaled to zero is starting '
             '(`Retry-After: 60`), `Retry-After` (in local mode: the routes of an `endpoint:` model, which is not '
             'served)'),
    ErrorDoc(503, ('endpoint_unreachable', 'storage_unavailable'), 'Lambda',
             'the SageMaker runtime or S3 cannot be reached, `Retry-After` (not in local mode)'),
    ErrorDoc(504, ('model_timeout',), 'Lambda',
             'the model did not answer within the read timeout (in local mode: within `--timeout`)'),
    ErrorDoc(504, ('timeout',), 'API Gateway',
             'the integration ran past `api_timeout_seconds` (not in local mode)'),
    # Local mode's HTTP server refuses what API Gateway's front door refuses deployed (local/gateway.py), before
    # any route runs: its own codes, in the same shape.
    ErrorDoc(400, ('bad_request',), 'local mode',
             'HTTP framing: a `Content-Length` that is not one length in digits, a header line with space before '
             'its colon, folded or with a bare CR, a lowercase or malformed method or request line'),
    ErrorDoc(408, ('request_timeout',), 'local mode',
             'the whole request (line, headers and body) did not arrive within `--request-timeout` seconds'),
    ErrorDoc(411, ('length_required',), 'local mode',
             'a body sent chunked (`Transfer-Encoding`) instead of with a `Content-Length`'),
    ErrorDoc(414, ('uri_too_long',), 'local mode', 'a request line over 8 KB (API Gateway\'s URL limit)'),
    ErrorDoc(431, ('headers_too_large',), 'local mode', 'request headers over 10 KB (API Gateway\'s limit)'),
    ErrorDoc(503, ('busy',), 'local mode',
             'more connections at once than `--max-connections`, `Retry-After: 1`'),
    ErrorDoc(503, ('starting',), 'local mode', 'the model is still loading; retry once `make local` says ready'),
    ErrorDoc(505, ('http_version_not_supported',), 'local mode', 'an HTTP version other than 1.0 or 1.1'),
    ErrorDoc(504, ('stream_timeout',), 'Lambda',
             'a streamed answer ran past `stream_timeout_seconds`: an `error` event at the end of the stream, its '
             'status already 200'),
)
