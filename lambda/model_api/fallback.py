"""The answer to a request the API has no route for: 405 with the methods its path has (and Allow), or 404 naming
the routes (model_api.routes.unrouted). Pure: the deployed fallback function (lambda/unrouted.py) and local mode's
gateway both answer with it."""

from __future__ import annotations

from typing import Sequence

from model_api import cors, routes
from model_api.http import error_response


def answer(event: dict, request_id: str, api_routes: Sequence[routes.Route], cors_origins: Sequence[str]) -> dict:
    """The proxy response for an event no route serves."""
    error = routes.unrouted(api_routes, event.get("path") or "/", event.get("httpMethod") or "")
    response = error_response(error, request_id)
    response["headers"].update(cors.response_headers(cors_origins, cors.request_origin(event.get("headers"))))
    return response
