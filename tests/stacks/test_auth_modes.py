"""Who may call: the API key (x-api-key, or a Bearer key through the key authorizer), auth=iam (SigV4) or
auth=cognito (a user pool's ID token); each option on and off in the template, and its settings checked."""

from __future__ import annotations

import pytest
from cfn_render import one, render, resources, statements

from deployment.settings import SettingsError, load_settings

POOL = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"
IAM = {"auth": "iam", "models": "stable-diffusion,minilm-embeddings"}  # as the nag and least-privilege variants
COGNITO = {"auth": "cognito", "cognito_user_pool_arn": POOL, "cors_origins": "*"}


def pairs(settings: dict) -> list[str]:
    return [f"{name}={value}" for name, value in settings.items()]


def proxy_methods(template):
    """Every method that reaches a Lambda (not the OpenAPI mock, not CORS preflight)."""
    return [m["Properties"] for m in resources(template, "AWS::ApiGateway::Method").values()
            if m["Properties"].get("Integration", {}).get("Type") == "AWS_PROXY"]


def test_the_key_authorizer_may_only_write_its_own_logs(template):
    function_id, function = next((k, r) for k, r in resources(template, "AWS::Lambda::Function").items()
                                 if k.startswith("ApiKeyAuthorizer"))
    assert function["Properties"]["Handler"] == "authorizer.handler"
    assert function["Properties"]["Timeout"] == 3
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policy, = [p for p in resources(template, "AWS::IAM::Policy").values()
               if {"Ref": role_id} in p["Properties"]["Roles"]]
    log_group_id = next(k for k in resources(template, "AWS::Logs::LogGroup") if k.startswith("ApiKeyAuthorizerLogs"))
    assert statements(policy["Properties"]["PolicyDocument"], template) == [
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
         "Resource": [f"${{{log_group_id}.Arn}}"]}]
    # API Gateway may invoke it, from this API only.
    permission, = [p["Properties"] for p in resources(template, "AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert "/authorizers/" in render(permission["SourceArn"], template)


def test_bearer_keys_off_is_the_x_api_key_header_alone(synth):
    template = synth(bearer_keys="false")
    _, api = one(template, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["ApiKeySourceType"] == "HEADER"
    assert resources(template, "AWS::ApiGateway::Authorizer") == {}
    assert not any(k.startswith("ApiKeyAuthorizer") for k in resources(template, "AWS::Lambda::Function"))
    for method in proxy_methods(template):
        assert method["ApiKeyRequired"] is True and method["AuthorizationType"] == "NONE"


def test_auth_iam_signs_every_route_and_outputs_the_policy_to_attach(synth):
    template = synth(**IAM)
    methods = proxy_methods(template)
    assert len(methods) > 10
    for method in methods:
        assert method["AuthorizationType"] == "AWS_IAM" and not method.get("ApiKeyRequired", False)
    # No key, no usage plan, no key authorizer: the stage's throttle applies to every caller together.
    for kind in ("AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::Authorizer"):
        assert resources(template, kind) == {}, kind
    _, stage = one(template, "AWS::ApiGateway::Stage")
    assert stage["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] == 10  # stage_throttle_rate
    api_id, _ = one(template, "AWS::ApiGateway::RestApi")
    stage_id, _ = one(template, "AWS::ApiGateway::Stage")
    policy_id, policy = one(template, "AWS::IAM::ManagedPolicy")
    assert statements(policy["Properties"]["PolicyDocument"], template) == [
        {"Action": ["execute-api:Invoke"], "Effect": "Allow",
         "Resource": [f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api_id}}}/"
                      f"${{{stage_id}}}/*/*"]}]
    outputs = template["Outputs"]
    assert outputs["InvokePolicyArn"]["Value"] == {"Ref": policy_id}
    assert "ApiKeyId" not in outputs and "UsagePlanId" not in outputs
    assert '--aws-sigv4 "aws:amz:$AWS_REGION:execute-api"' in render(outputs["CurlExample"]["Value"], template)


def test_auth_cognito_takes_the_pools_tokens_on_every_route(synth):
    template = synth(**COGNITO)
    authorizer_id, authorizer = one(template, "AWS::ApiGateway::Authorizer")
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["ProviderARNs"] == [POOL]
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    for method in proxy_methods(template):
        assert (method["AuthorizationType"], method["AuthorizerId"]) == ("COGNITO_USER_POOLS", {"Ref": authorizer_id})
        assert not method.get("ApiKeyRequired", False)
    assert resources(template, "AWS::ApiGateway::ApiKey") == {}
    assert 'Authorization: $ID_TOKEN' in render(template["Outputs"]["CurlExample"]["Value"], template)
    # CORS preflight stays open (browsers send it without credentials), and lets the token header through.
    preflight = [m["Properties"] for m in resources(template, "AWS::ApiGateway::Method").values()
                 if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert preflight and all(m["AuthorizationType"] == "NONE" for m in preflight)


def test_the_openapi_document_names_the_deployments_auth():
    import json

    from openapi_spec_validator import validate

    iam = json.loads(load_settings(pairs(IAM)).openapi_json())
    validate(iam)
    assert iam["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert {json.dumps(op["security"]) for item in iam["paths"].values() for op in item.values()} == {
        '[{"sigv4": []}]'}
    cognito = json.loads(load_settings(pairs(COGNITO)).openapi_json())
    validate(cognito)
    assert cognito["components"]["securitySchemes"] == {"cognito": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "an ID token of a user of the deployment's Cognito user pool"}}


@pytest.mark.parametrize("settings,problem", [
    ({"auth": "oauth"}, "auth must be one of api_key, iam, cognito (got 'oauth')"),
    ({"auth": "cognito"}, "auth=cognito needs cognito_user_pool_arn"),
    ({"cognito_user_pool_arn": POOL}, "cognito_user_pool_arn goes with auth=cognito"),
    ({"auth": "cognito", "cognito_user_pool_arn": "us-east-1_AbCdEf123"},
     "cognito_user_pool_arn 'us-east-1_AbCdEf123' is not a Cognito user pool ARN"),
])
def test_auth_settings_are_checked_at_synth(settings, problem):
    with pytest.raises(SettingsError) as refused:
        load_settings(pairs(settings))
    assert problem in str(refused.value)
