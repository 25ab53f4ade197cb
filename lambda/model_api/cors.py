"""CORS (the cors_origins setting): which web origins a browser may call the API from. One definition for the
gateway (preflight answers and its own errors, stacks/rest_api.py), the Lambdas' answers (handler.py) and local mode.

A browser sends Origin; an answer names that origin back in Access-Control-Allow-Origin only when it is allowed
("*" allows any). Preflight (OPTIONS) answers say which methods and headers may follow. Without cors_origins,
nothing changes: no header is added and no OPTIONS method exists.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

ALLOW_METHODS = ("GET", "POST", "OPTIONS")
# Authorization: a Bearer key, a SigV4 signature or a Cognito token; X-Amz-*: the rest of a SigV4 signature (auth=iam)
ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Amz-Date", "X-Amz-Security-Token", "X-Api-Key")
EXPOSE_HEADERS = ("Retry-After", "X-Request-Id", "X-Seed")
MAX_AGE_SECONDS = 600
ANY = "*"
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def parse_origins(text: Optional[str]) -> tuple[str, ...]:
    return tuple(part.strip().rstrip("/") for part in (text or "").split(",") if part.strip())


def origin_problems(origins: Sequence[str]) -> list[str]:
    if ANY in origins and len(origins) > 1:
        return ["cors_origins: '*' allows every origin; give it alone or list the origins"]
    return [f"cors_origins: {origin!r} is not an origin such as https://app.example.com (scheme, host, optional "
            "port; no path)" for origin in origins if origin != ANY and not ORIGIN.match(origin)]


def request_origin(headers: Optional[Mapping[str, str]]) -> Optional[str]:
    """The Origin header of a request, whatever its case (API Gateway passes headers as the client sent them)."""
    return next((value for name, value in (headers or {}).items() if name.lower() == "origin"), None)


def allowed_origin(origins: Sequence[str], origin: Optional[str]) -> Optional[str]:
    """What Access-Control-Allow-Origin says to this request: "*", the origin itself, or None (not allowed)."""
    if not origins:
        return None
    if ANY in origins:
        return ANY
    return origin if origin is not None and origin.rstrip("/") in origins else None


def response_headers(origins: Sequence[str], origin: Optional[str]) -> dict[str, str]:
    """Headers a browser needs to read an answer (success or error) from this origin; {} when it may not."""
    allowed = allowed_origin(origins, origin)
    if allowed is None:
        return {}
    headers = {"Access-Control-Allow-Origin": allowed, "Access-Control-Expose-Headers": ", ".join(EXPOSE_HEADERS)}
    if allowed != ANY:
        headers["Vary"] = "Origin"  # the answer differs by Origin: caches must keep them apart
    return headers


def preflight_headers(origins: Sequence[str], origin: Optional[str]) -> dict[str, str]:
    """An OPTIONS answer's headers: the above, and which methods and headers the real request may use."""
    headers = response_headers(origins, origin)
    if headers:
        headers.update({"Access-Control-Allow-Methods": ", ".join(ALLOW_METHODS),
                        "Access-Control-Allow-Headers": ", ".join(ALLOW_HEADERS),
                        "Access-Control-Max-Age": str(MAX_AGE_SECONDS)})
    return headers
