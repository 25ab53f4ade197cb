"""Reading request bodies: the one place that turns a proxy event's body into JSON or a clear 4xx."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Mapping

from model_api.errors import ApiError
from model_api.validation import validate


def read_json_body(event: Mapping, limit: int, example: str) -> object:
    """The JSON value in a proxy event's body (base64 or not), or ApiError 400/413 saying what is wrong."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise ApiError(400, "invalid_request", f"request body is empty; send a JSON object such as {example}")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ApiError(400, "invalid_request", "request body is marked base64 but is not valid base64") from None
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > limit:
        raise ApiError(413, "request_too_large", f"request body is {len(raw)} bytes; the limit is {limit}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_request", "request body is not valid UTF-8") from None
    if not text.strip():
        raise ApiError(400, "invalid_request", f"request body is empty; send a JSON object such as {example}")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicate_keys)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_request", f"request body is not valid JSON: {_short(exc)}") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _refuse_duplicate_keys(pairs: list) -> dict:
    """JSON allows a key twice and parsers disagree on which one wins ({"prompt": "", "prompt": "x"}): whatever
    checks a body and whatever uses it could read different values. Refused."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key[:40]!r} in an object")
        seen.add(key)
    return dict(pairs)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def validated(data: object, schema: dict) -> dict:
    """data if it satisfies schema, else ApiError 400 listing every problem."""
    problems = validate(data, schema)
    if problems:
        raise ApiError(400, "invalid_request", "; ".join(problems))
    return data
