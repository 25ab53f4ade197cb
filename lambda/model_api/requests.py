"""Reading request bodies: the one place that turns a proxy event's body into JSON or a clear 4xx."""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from typing import Any, Mapping

from model_api.errors import ApiError
from model_api.validation import normalized, shown, validate


def read_json_body(event: Mapping, limit: int, example: str) -> Any:
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
    # RFC 8259: a parser "MAY ignore the presence of a byte order mark": a BOM some editors and tools write is not
    # the caller's mistake.
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ApiError(400, "invalid_request", f"request body is empty; send a JSON object such as {example}")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicate_keys)
    except _NotJson as exc:
        raise ApiError(400, "invalid_request", f"request body is not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_request", _json_problem(text, exc, example)) from None
    except ValueError:
        # The one other refusal of json.loads: an integer over Python's conversion limit (sys.int_info
        # default_max_str_digits, 4,300 digits) raises while it is read. No field takes such a number.
        raise ApiError(400, "invalid_request", f"request body holds a number of more than {_DIGITS_LIMIT:,} digits; "
                                               "no field takes one") from None
    except RecursionError:
        raise ApiError(400, "invalid_request", "request body nests objects or arrays too deeply to read (keep it "
                                               "to a few levels, as the documented bodies are)") from None


_DIGITS_LIMIT = sys.get_int_max_str_digits() or sys.int_info.default_max_str_digits


class _NotJson(ValueError):
    """A body Python's parser would take but JSON does not allow (NaN, a key twice), in the caller's words."""


def _reject_constant(name: str) -> None:
    raise _NotJson(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def _refuse_duplicate_keys(pairs: list) -> dict:
    """JSON allows a key twice and parsers disagree on which one wins ({"prompt": "", "prompt": "x"}): whatever
    checks a body and whatever uses it could read different values. Refused."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _NotJson(f"the key {shown(key)} appears twice in one object")
        seen.add(key)
    return dict(pairs)


# The standard library's JSON errors (json.decoder's messages) in the caller's words.
_JSON_PROBLEMS = (
    ("Expecting value", "a value (an object, array, string, number, true, false or null) is missing"),
    ("Expecting property name enclosed in double quotes", "an object key must be text in double quotes"),
    ("Expecting ',' delimiter", "a comma is missing between two items"),
    ("Expecting ':' delimiter", "a colon is missing after an object key"),
    ("Unterminated string", "a string has no closing double quote"),
    ("Invalid control character", "a string holds a raw control character (write \\n, \\t, ... instead)"),
    ("Invalid \\uXXXX escape", "a string holds a \\u escape that is not four hex digits"),
    ("Invalid \\escape", "a string holds a backslash escape JSON does not have"),
    ("Extra data", "more follows the JSON value; send one value"),
)
# name=value&name=value: an HTML form's encoding (curl -d without a JSON body), not JSON.
_FORM = re.compile(r"^[A-Za-z_][\w.-]*=[^{}\[\]]*$", re.S)


def _json_problem(text: str, error: json.JSONDecodeError, example: str) -> str:
    """Where the body stops being JSON, and what is wrong there, never the parser's own sentence."""
    if _FORM.match(text.strip()):
        return (f"request body must be JSON (Content-Type: application/json), such as {example}; this one is "
                "form-encoded (name=value&...)")
    words = next((ours for theirs, ours in _JSON_PROBLEMS if error.msg.startswith(theirs)), "it does not follow JSON")
    return f"request body is not valid JSON at line {error.lineno}, column {error.colno}: {words}"


def validated(data: Any, schema: dict) -> Any:
    """data, its numbers in the types the schema names (validation.normalized), if it satisfies schema; else
    ApiError 400 listing every problem."""
    problems = validate(data, schema)
    if problems:
        raise ApiError(400, "invalid_request", "; ".join(problems))
    return normalized(data, schema)
