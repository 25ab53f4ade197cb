"""The API key in a request: the x-api-key header, or `Authorization: Bearer <key>` (what the openai SDK and
huggingface_hub send). One reading for the deployed API's key authorizer (lambda/authorizer.py) and local mode."""

from __future__ import annotations

import re
from typing import Mapping, Optional

API_KEY_HEADER = "x-api-key"
_BEARER = re.compile(r"Bearer[ \t]+([!-~]+)[ \t]*\Z", re.IGNORECASE | re.ASCII)


def api_key_from(headers: Optional[Mapping[str, str]]) -> Optional[str]:
    """The key the request carries, or None. x-api-key wins when both are sent (a client configured for this API
    may still send an Authorization header of its own)."""
    lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
    key = lowered.get(API_KEY_HEADER)
    if key:
        return key
    match = _BEARER.match(lowered.get("authorization") or "")
    return match.group(1) if match else None


def authorizer_response(event: Mapping) -> dict:
    """A REQUEST authorizer's answer for API key source AUTHORIZER: allow the method and hand the key to API
    Gateway as usageIdentifierKey. API Gateway itself then checks it against the usage plan's keys, exactly as it
    checks an x-api-key header (403 Forbidden when it is not one of them) and throttles by it. Raises
    PermissionError without a key (the entry answers "Unauthorized": 401)."""
    key = api_key_from(event.get("headers"))
    if key is None:
        raise PermissionError("no API key")
    return {"principalId": "api-key",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}]},
            "usageIdentifierKey": key}
