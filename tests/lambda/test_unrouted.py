"""lambda/unrouted.py: what a request no route serves gets (the API's fallback function, behind the key): 405 with
the methods its path has, or 404 naming the routes; CORS as every other answer; one log line."""

from __future__ import annotations

import importlib.util
import json
import logging
from types import SimpleNamespace

import pytest
from lambda_rig import LAMBDA_DIR
from model_api import routes
from model_api.routes import ModelInfo

CATALOG = [ModelInfo("stable-diffusion", "text-to-image", "e-sd", "ml.g5.xlarge", "async"),
           ModelInfo("gpt2", "text-generation", "e-gpt2", "ml.g5.xlarge")]
APP = "https://app.example.com"


@pytest.fixture(scope="module")
def unrouted():
    import os

    saved = dict(os.environ)
    os.environ.update({"MODEL_CATALOG": routes.catalog_to_json(CATALOG), "CORS_ORIGINS": APP})
    try:
        spec = importlib.util.spec_from_file_location("unrouted_under_test", LAMBDA_DIR / "unrouted.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


def call(unrouted, method: str, path: str, resource: str = "/{proxy+}", origin: str | None = None) -> dict:
    event = {"httpMethod": method, "path": path, "resource": resource,
             "headers": {"Origin": origin} if origin else None}
    response = unrouted.handler(event, SimpleNamespace(aws_request_id="req-1"))
    return {**response, "json": json.loads(response["body"])}


def test_a_path_the_api_has_gets_405_with_its_methods(unrouted):
    answer = call(unrouted, "DELETE", "/images", resource="/images")
    assert answer["statusCode"] == 405 and answer["headers"]["Allow"] == "GET, POST"
    assert answer["json"] == {"error": {"code": "method_not_allowed",
                                        "message": "DELETE is not allowed on /images; it takes GET or POST"}}
    # A {parameter} path matches one segment, as API Gateway matches it; the document route is known too.
    job = call(unrouted, "POST", "/jobs/0123abcd", resource="/jobs/{job_id}")
    assert (job["statusCode"], job["headers"]["Allow"]) == (405, "GET")
    assert job["json"]["error"]["message"] == "POST is not allowed on /jobs/{job_id}; it takes GET"
    document = call(unrouted, "POST", "/openapi.json", resource="/openapi.json")
    assert (document["statusCode"], document["headers"]["Allow"]) == (405, "GET")


def test_a_path_the_api_lacks_gets_404_naming_every_route(unrouted):
    answer = call(unrouted, "GET", "/jobs/a/b")
    assert answer["statusCode"] == 404 and "Allow" not in answer["headers"]
    message = answer["json"]["error"]["message"]
    assert message.startswith("no route GET /jobs/a/b; this API has GET /endpoint, POST /generate, GET /images, ")
    every = {f"{r.method} {r.path}" for r in routes.api_routes(CATALOG)}
    assert all(route in message for route in every) and message.endswith("(GET /openapi.json describes each)")
    long = call(unrouted, "GET", "/" + "x" * 300)["json"]["error"]["message"]
    assert long.startswith("no route GET /" + "x" * 96 + "...;")  # a caller's path is shown cut to 100 characters


def test_answers_carry_the_cors_headers_and_the_request_id_and_log_one_line(unrouted, caplog):
    with caplog.at_level(logging.INFO, logger="model_api"):
        answer = call(unrouted, "PUT", "/nowhere", origin=APP)
    record, = [r for r in caplog.records if getattr(r, "request_id", None) == "req-1"]
    assert answer["headers"]["Access-Control-Allow-Origin"] == APP and answer["headers"]["X-Request-Id"] == "req-1"
    assert "Access-Control-Allow-Origin" not in call(unrouted, "PUT", "/nowhere", origin="https://evil.test")["headers"]
    assert (record.status, record.error_code, record.route) == (404, "not_found", "/{proxy+}")
    assert "/nowhere" not in record.getMessage()  # the caller's path text is not logged


def test_local_mode_and_the_deployed_function_match_paths_the_same_way():
    api = routes.api_routes(CATALOG)
    assert routes.route_path(api, "/models/gpt2/") == "/models/gpt2"
    assert routes.route_path(api, "/jobs/x") == "/jobs/{job_id}" and routes.route_path(api, "/jobs/") is None
    assert routes.route_path(api, "/models/stable-diffusion/jobs/abc") == "/models/stable-diffusion/jobs/{job_id}"
    assert routes.unrouted(api, "/images", "").message == "(no method) is not allowed on /images; it takes GET or POST"


def test_a_lowercase_method_is_told_that_methods_are_case_sensitive():
    error = routes.unrouted(routes.routes(CATALOG), "/generate", "post")
    assert (error.status, error.code, error.headers) == (405, "method_not_allowed", {"Allow": "POST"})
    assert error.message == "methods are case-sensitive: post is not POST; /generate takes POST"
    other = routes.unrouted(routes.routes(CATALOG), "/generate", "get")  # no GET there, in any case
    assert other.message == "get is not allowed on /generate; it takes POST"
    assert routes.unrouted(routes.routes(CATALOG), "/generate", "").message == (
        "(no method) is not allowed on /generate; it takes POST")
