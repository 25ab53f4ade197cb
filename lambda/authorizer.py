"""Lambda entry of the API key authorizer (bearer_keys): lets a client send its API key as x-api-key or as
`Authorization: Bearer <key>`; API Gateway validates the key itself (model_api.auth.authorizer_response). Holds no
secret, calls nothing, logs nothing (the key never reaches a log)."""

from __future__ import annotations

from model_api.auth import authorizer_response


def handler(event: dict, context) -> dict:
    try:
        return authorizer_response(event)
    except PermissionError:
        # The one message API Gateway turns into 401 Unauthorized (its UNAUTHORIZED gateway response): API Gateway
        # Developer Guide, "Use API Gateway Lambda authorizers" (its example authorizers end with "Unauthorized").
        raise Exception("Unauthorized") from None
