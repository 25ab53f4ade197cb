"""The integration tests' HTTP checker: a Lambda in each assertion stack (tests/integ/deployed_api.py) that makes
one HTTP call and answers with the verdict and the few values read from the answer, never the answer itself.

Why not integ-tests-alpha's HttpApiCall: its handler returns the whole HTTP answer (status, every header, the body)
to CloudFormation as the custom resource's Data (lambda-handler/http.js, index.js: `data: {...assertionResult,
...result}`), and CloudFormation refuses a custom resource response over 4,096 bytes ("The total size of the
response body can't exceed 4096 bytes": CloudFormation User Guide, "Custom resource response objects"): an
embeddings answer, a stream or a PNG is far over it. Called through LambdaInvokeFunction, this function's answer is
the Data instead, and it stays small: {"check": "ok" or what failed, "status", and each value asked for in `read`}.

Event: method, url, headers, body (a string or null), expect {status, type (a regular expression for the
Content-Type), pattern (one the body must match), absent (one it must not), png (the body is a PNG), json {dotted
path: value}}, read {name: dotted
path into {"body": the JSON body, "headers": lowercase headers}}. Standard library only (python3.13 runtime).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_VALUE_CHARS = 2048  # a presigned URL with a session token is ~1.5 KB
MAX_CHECK_CHARS = 600
TIMEOUT_SECONDS = 60


def dig(value, path: str):
    """The value at a dotted path ("body.images.0.url"); None where it is not."""
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def call(event: dict) -> tuple[int, dict, bytes]:
    body = event.get("body")
    request = urllib.request.Request(event["url"], method=event.get("method", "GET"),
                                     data=body.encode("utf-8") if body is not None else None,
                                     headers=event.get("headers") or {})
    try:
        with urllib.request.urlopen(request, timeout=event.get("timeout", TIMEOUT_SECONDS)) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def verdict(expect: dict, status: int, headers: dict, data: bytes, answer: dict) -> str:
    text = data.decode("utf-8", "replace")
    problems = []
    if "status" in expect and status != expect["status"]:
        problems.append(f"status {status}, expected {expect['status']}")
    content_type = headers.get("content-type", "")
    if "type" in expect and not re.search(expect["type"], content_type):
        problems.append(f"Content-Type {content_type!r} does not match {expect['type']!r}")
    if "pattern" in expect and not re.search(expect["pattern"], text):
        problems.append(f"the body does not match {expect['pattern']!r}")
    if "absent" in expect and re.search(expect["absent"], text):
        problems.append(f"the body holds {expect['absent']!r}")
    if expect.get("png") and not data.startswith(PNG_SIGNATURE):
        problems.append("the body is not a PNG")
    for path, wanted in (expect.get("json") or {}).items():
        found = dig(answer, path)
        if found != wanted:
            problems.append(f"{path} is {found!r}, expected {wanted!r}")
    if not problems:
        return "ok"
    return ("; ".join(problems) + f" (answer: {text[:200]!r})")[:MAX_CHECK_CHARS]


# Answers that say "not now" rather than "no": a serverless endpoint's cold start, an instance still warming, a
# burst of the throttle. A call expecting success asks again, after Retry-After (at most RETRY_PAUSE_MAX), up to
# ATTEMPTS times; a call expecting one of these statuses gets its first answer.
NOT_NOW = (429, 502, 503, 504)
ATTEMPTS = 4
RETRY_PAUSE = 5.0
RETRY_PAUSE_MAX = 30.0


def handler(event: dict, context=None, sleep=time.sleep) -> dict:
    wanted = (event.get("expect") or {}).get("status")
    for attempt in range(1, ATTEMPTS + 1):
        status, headers, data = call(event)
        if status not in NOT_NOW or wanted in NOT_NOW or attempt == ATTEMPTS:
            break
        try:
            pause = float(headers.get("retry-after", RETRY_PAUSE))
        except ValueError:
            pause = RETRY_PAUSE
        sleep(min(max(pause, 0.0), RETRY_PAUSE_MAX))
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    answer = {"body": body, "headers": headers}
    out = {"check": verdict(event.get("expect") or {}, status, headers, data, answer), "status": status,
           "attempts": attempt}
    for name, path in (event.get("read") or {}).items():
        value = dig(answer, path)
        out[name] = "" if value is None else str(value)[:MAX_VALUE_CHARS]
    return out
