"""CORS (cors_origins): the pure rules (model_api.cors), the handler's answers, the gateway's own (template) and local
mode's gateway, which must agree."""

from __future__ import annotations

import json

import pytest
from lambda_rig import api_event
from model_api import cors
from model_api.routes import Route
from test_model_kinds import model_env

APP = "https://app.example.com"
DEV = "http://localhost:3000"


def test_an_allowed_origin_is_named_back_and_any_other_gets_nothing():
    assert cors.response_headers((APP, DEV), DEV) == {
        "Access-Control-Allow-Origin": DEV, "Vary": "Origin",
        "Access-Control-Expose-Headers": "Retry-After, X-Request-Id, X-Seed"}
    assert cors.response_headers((APP,), "https://evil.example") == {}
    assert cors.response_headers((APP,), None) == {}
    assert cors.response_headers((), APP) == {}
    assert cors.response_headers(("*",), "https://anyone.example")["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in cors.response_headers(("*",), "https://anyone.example")
    assert cors.allowed_origin((APP,), APP + "/") == APP + "/"  # a trailing slash is the same origin
    preflight = cors.preflight_headers((APP,), APP)
    assert preflight["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert preflight["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Amz-Date, X-Amz-Security-Token, X-Api-Key"
    assert preflight["Access-Control-Max-Age"] == "600"
    assert cors.preflight_headers((APP,), "https://evil.example") == {}
    assert cors.request_origin({"origin": APP}) == cors.request_origin({"Origin": APP}) == APP


def test_origins_are_checked_at_synth_with_every_problem_named():
    from deployment.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as caught:
        load_settings([f"cors_origins={APP}/path,ftp://x,*"])
    message = str(caught.value)
    assert "'*' allows every origin; give it alone" in message
    assert load_settings([f"cors_origins={APP}, {DEV}"]).cors_origin_list == (APP, DEV)
    with pytest.raises(SettingsError, match=r"'app.example.com' is not an origin such as"):
        load_settings(["cors_origins=app.example.com"])
    env = load_settings([f"cors_origins={APP},{DEV}"])
    assert env.function_environment(env.catalog[0])["CORS_ORIGINS"] == f"{APP},{DEV}"
    assert "CORS_ORIGINS" not in load_settings([]).function_environment(load_settings([]).catalog[0])


def test_the_handler_names_an_allowed_origin_on_answers_and_errors(make_rig):
    rig = make_rig(**model_env("gpt2-tgi", "tgi"), CORS_ORIGINS=f"{APP},{DEV}")
    rig.endpoint.returns_json([{"generated_text": " hi"}])
    ok = rig.call(api_event(body={"inputs": "x"}, resource="/generate", headers={"Origin": DEV}))
    assert ok["statusCode"] == 200 and ok["headers"]["Access-Control-Allow-Origin"] == DEV
    assert ok["headers"]["Vary"] == "Origin"
    bad = rig.call(api_event(body={"inputs": ""}, resource="/generate", headers={"origin": APP}))
    assert bad["statusCode"] == 400 and bad["headers"]["Access-Control-Allow-Origin"] == APP
    other = rig.call(api_event(body={"inputs": ""}, resource="/generate", headers={"Origin": "https://evil.example"}))
    assert "Access-Control-Allow-Origin" not in other["headers"]


def test_without_cors_origins_the_handler_adds_no_header(make_rig):
    rig = make_rig(**model_env("gpt2-tgi", "tgi"))
    response = rig.call(api_event(body={"inputs": ""}, resource="/generate", headers={"Origin": APP}))
    assert not any(name.startswith("Access-Control") for name in response["headers"])


def gateway(origins):
    from local.gateway import LocalGateway

    def handler(event, context):
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}

    return LocalGateway({"m": handler}, "key", [Route("/models/m", "POST", "m", "generate"),
                                                Route("/models/m/endpoint", "GET", "m", "endpoint")],
                        openapi="{}", cors_origins=origins)


def test_local_gateway_answers_preflight_and_its_own_errors_as_the_deployed_one():
    from stacks.rest_api import gateway_cors_headers

    one = gateway((APP,))
    status, headers, body = one.handle("OPTIONS", "/models/m", {"Origin": APP}, b"")
    assert (status, body) == (204, b"") and headers == cors.preflight_headers((APP,), APP)
    assert one.handle("OPTIONS", "/models", {"Origin": APP}, b"")[0] == 204  # a resource between routes
    # No key: the key authorizer's 401 (bearer_keys); a wrong one: the gateway's 403. Both with the CORS headers.
    assert one.handle("POST", "/models/m", {"Origin": APP}, b"{}")[0] == 401
    status, headers, _ = one.handle("POST", "/models/m", {"Origin": APP, "x-api-key": "nope"}, b"{}")
    assert status == 403
    deployed = {k: v.strip("'") for k, v in gateway_cors_headers((APP,)).items()}
    assert {k: headers[k] for k in deployed} == deployed
    several = gateway((APP, DEV))
    # Every path is a method of the API (a route's or the fallback's ANY): no key is the gateway's 401, naming the
    # request's origin back; with the key, the fallback function's 404 or 405 with its own CORS headers.
    status, headers, _ = several.handle("GET", "/nowhere", {"Origin": DEV}, b"")
    assert status == 401 and headers["Access-Control-Allow-Origin"] == DEV and headers["Vary"] == "Origin"
    status, headers, body = several.handle("GET", "/nowhere", {"Origin": DEV, "x-api-key": "key"}, b"")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    assert headers["Access-Control-Allow-Origin"] == DEV and headers["Vary"] == "Origin"
    assert several.handle("OPTIONS", "/nowhere/at/all", {"Origin": DEV}, b"")[0] == 204  # /{proxy+} has one too
    assert gateway_cors_headers((APP, DEV))["Access-Control-Allow-Origin"] == "method.request.header.Origin"
    none = gateway(())
    # No CORS: no OPTIONS method, so OPTIONS is one more method the path does not have.
    status, headers, _ = none.handle("OPTIONS", "/models/m", {"Origin": APP, "x-api-key": "key"}, b"")
    assert (status, headers["Allow"]) == (405, "POST")
    assert not any(k.startswith("Access-Control") for k in none.handle("GET", "/x", {"Origin": APP}, b"")[1])
