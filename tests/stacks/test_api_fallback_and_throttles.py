"""The API's answers beyond its routes and its throttles: every other path and method reaches the fallback function
(behind the same key or signature), the keyless methods have a small limit of their own, the stage's stays above
the key's, and the key authorizer has reserved concurrency and is traced with the rest."""

from __future__ import annotations

import json

import pytest
from cfn_render import one, resources, statements

from deployment.settings import Settings, SettingsError


def path_of(template, ref) -> str:
    if "Fn::GetAtt" in ref:
        return ""
    props = template["Resources"][ref["Ref"]]["Properties"]
    return f"{path_of(template, props['ParentId'])}/{props['PathPart']}"


def methods(template) -> dict:
    """(path, HTTP method) -> the method's properties."""
    return {(path_of(template, m["Properties"]["ResourceId"]) or "/", m["Properties"]["HttpMethod"]): m["Properties"]
            for m in resources(template, "AWS::ApiGateway::Method").values()}


def unrouted_id(template) -> str:
    return next(k for k in resources(template, "AWS::Lambda::Function") if k.startswith("UnroutedFunction"))


def test_every_resource_and_every_other_path_reach_the_fallback_behind_the_key(template):
    found = methods(template)
    paths = {path for path, _ in found}
    fallback = {path: props for (path, method), props in found.items() if method == "ANY"}
    assert set(fallback) == paths and "/{proxy+}" in paths and "/" in paths and "/models" in paths
    function = unrouted_id(template)
    for path, props in fallback.items():
        assert props["Integration"]["Type"] == "AWS_PROXY" and function in json.dumps(props["Integration"]["Uri"])
        # The same authorization as every route: the key (through the key authorizer), never open.
        assert props["ApiKeyRequired"] is True and props["AuthorizationType"] == "CUSTOM", path
    # One permission for all of them (scoped to the API), not one per method.
    permission, = [p["Properties"] for p in resources(template, "AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}]
    assert permission["SourceArn"]["Fn::Join"][1][-1] == "/*/*/*"


def test_the_fallback_may_only_write_its_logs_and_knows_the_routes_and_origins(synth):
    template = synth(cors_origins="https://app.example.com")
    function_id = unrouted_id(template)
    props = template["Resources"][function_id]["Properties"]
    assert props["Handler"] == "unrouted.handler"
    variables = props["Environment"]["Variables"]
    assert json.loads(variables["MODEL_CATALOG"])[0]["name"] == "stable-diffusion"
    assert variables["CORS_ORIGINS"] == "https://app.example.com"
    role = props["Role"]["Fn::GetAtt"][0]
    policy, = [p for p in resources(template, "AWS::IAM::Policy").values()
               if {"Ref": role} in p["Properties"]["Roles"]]
    logs = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert statements(policy["Properties"]["PolicyDocument"], template) == [
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
         "Resource": [f"${{{logs}.Arn}}"]}]


@pytest.mark.parametrize("settings, authorization", [({"auth": "iam"}, "AWS_IAM"),
                                                     ({"bearer_keys": "false"}, "NONE")])
def test_the_fallback_takes_the_same_authorization_as_the_routes(synth, settings, authorization):
    found = methods(synth(**settings))
    routes = [props for (_, method), props in found.items() if method not in ("ANY", "OPTIONS")
              and props["Integration"]["Type"] == "AWS_PROXY"]
    fallback = [props for (_, method), props in found.items() if method == "ANY"]
    assert fallback and all(p["AuthorizationType"] == authorization for p in routes + fallback)
    if authorization == "NONE":  # the key alone, in x-api-key
        assert all(p["ApiKeyRequired"] is True for p in routes + fallback)


def test_keyless_methods_have_their_own_small_throttle_and_the_stage_stays_above_the_key(synth):
    template = synth(cors_origins="https://app.example.com", keyless_throttle_rate="0.5",
                     keyless_throttle_burst="3")
    found = methods(template)
    keyless = sorted(path for path, method in found if method == "OPTIONS") + ["/openapi.json GET"]
    settings = one(template, "AWS::ApiGateway::Stage")[1]["Properties"]["MethodSettings"]
    stage, *per_method = settings
    assert (stage["ResourcePath"], stage["HttpMethod"], stage["ThrottlingRateLimit"],
            stage["ThrottlingBurstLimit"]) == ("/*", "*", 10, 20)
    assert len(per_method) == len(keyless) and all(
        (m["ThrottlingRateLimit"], m["ThrottlingBurstLimit"]) == (0.5, 3) for m in per_method)
    # Every CORS preflight (one per resource, the fallback's /{proxy+} too) and the document, each by its path.
    assert {(m["ResourcePath"], m["HttpMethod"]) for m in per_method} == {
        ("/" + path.replace("/", "~1") if path != "/" else "/", "OPTIONS")
        for path, method in found if method == "OPTIONS"} | {("/~1openapi.json", "GET")}
    plan = one(template, "AWS::ApiGateway::UsagePlan")[1]["Properties"]["Throttle"]
    assert (plan["RateLimit"], plan["BurstLimit"]) == (2, 5)


def test_settings_keep_the_stage_above_the_key_and_every_limit_positive():
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"throttle_rate": "10", "throttle_burst": "20"})
    assert caught.value.problems == [
        "stage_throttle_rate (10) must be above throttle_rate (10): every caller shares the stage's limit, so at the "
        "key's own limit callers without a key could use it up for the key holders",
        "stage_throttle_burst (20) must be above throttle_burst (20), for the same reason"]
    Settings.from_values({"throttle_rate": "10", "throttle_burst": "20", "stage_throttle_rate": "11",
                          "stage_throttle_burst": "21"})
    Settings.from_values({"throttle_rate": "10", "throttle_burst": "20", "auth": "iam"})  # no key, no plan
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"keyless_throttle_rate": "0", "keyless_throttle_burst": "0",
                              "authorizer_concurrency": "-1"})
    assert caught.value.problems == [
        "keyless_throttle_rate must be above 0 requests per second (got 0)",
        "keyless_throttle_burst must be at least 1 request (got 0)",
        "authorizer_concurrency must be from 0 (none reserved) to 1000 (got -1)"]


def test_the_key_authorizer_has_reserved_concurrency_unless_told_none(template, synth):
    def authorizer(t):
        return next(r["Properties"] for k, r in resources(t, "AWS::Lambda::Function").items()
                    if k.startswith("ApiKeyAuthorizer"))

    assert authorizer(template)["ReservedConcurrentExecutions"] == 10
    assert authorizer(synth(authorizer_concurrency="3"))["ReservedConcurrentExecutions"] == 3
    assert "ReservedConcurrentExecutions" not in authorizer(synth(authorizer_concurrency="0"))
