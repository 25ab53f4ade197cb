"""Lambda entry for every request the API has no route for (stacks/rest_api.py add_fallback: ANY on each resource
and on /{proxy+}, behind the same key or signature as the routes). It answers 405 with the methods the path has
(and Allow), or 404 naming the routes, instead of API Gateway's own "Missing Authentication Token". Calls nothing,
holds no secret; one JSON log line per request.

Environment: MODEL_CATALOG (model_api.routes), CORS_ORIGINS.
"""

from __future__ import annotations

import logging
import os

from model_api import cors, routes
from model_api.app import request_id_of
from model_api.fallback import answer

log = logging.getLogger("model_api")
log.setLevel(logging.INFO)
ROUTES = routes.api_routes(routes.catalog_from_env(os.environ))
CORS_ORIGINS = cors.parse_origins(os.environ.get("CORS_ORIGINS"))


def handler(event: dict, context) -> dict:
    request_id = request_id_of(context)
    response = answer(event, request_id, ROUTES, CORS_ORIGINS)
    # Never the path's text beyond the resource (it may carry anything a caller typed), never a body or query.
    log.info("%s %s %s", event.get("httpMethod"), event.get("resource"), response["statusCode"],
             extra={"request_id": request_id, "method": event.get("httpMethod"), "route": event.get("resource"),
                    "status": response["statusCode"], "error_code": "method_not_allowed"
                    if response["statusCode"] == 405 else "not_found"})
    return response
