"""make preflight: every check both ways, against botocore's Stubber (no AWS, no network)."""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.stub import Stubber

from deployment.settings import Settings
from ops import preflight

REGION = "us-east-1"
ACCOUNT = "123456789012"


class StubbedClients:
    """preflight's Clients with real boto3 clients whose every call is answered by a Stubber."""

    def __init__(self, region=REGION):
        self.region = region
        self._clients, self.stubs = {}, {}

    def __call__(self, service):
        if service not in self._clients:
            client = boto3.client(service, region_name=self.region)
            self.stubs[service] = Stubber(client)
            self.stubs[service].activate()
            self._clients[service] = client
        return self._clients[service]

    def stub(self, service) -> Stubber:
        self(service)
        return self.stubs[service]

    def other(self, service, region):
        key = f"{service}@{region}"
        if key not in self._clients:
            client = boto3.client(service, region_name=region)
            self.stubs[key] = Stubber(client)
            self.stubs[key].activate()
            self._clients[key] = client
        return self._clients[key]

    def stub_other(self, service, region) -> Stubber:
        self.other(service, region)
        return self.stubs[f"{service}@{region}"]

    def verify(self):
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


@pytest.fixture
def clients():
    made = StubbedClients()
    yield made
    made.verify()


def settings(**values):
    return Settings.from_values(values)


def quota_page(*pairs):
    return {"Quotas": [{"QuotaName": f"{t} for endpoint usage", "Value": float(v), "ServiceCode": "sagemaker",
                        "QuotaCode": "L-1"} for t, v in pairs]}


def test_credentials_both_ways(clients):
    clients.stub("sts").add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": "arn:aws:iam::1:user/me",
                                                             "UserId": "x"})
    check, account = preflight.credentials(clients)
    assert (check.status, account) == (preflight.OK, ACCOUNT)
    clients.stub("sts").add_client_error("get_caller_identity", "ExpiredToken", "token expired")
    check, account = preflight.credentials(clients)
    assert check.status == preflight.BLOCK and account is None and "aws configure" in check.fix


def test_region_both_ways():
    assert preflight.region(settings(), "eu-west-1").status == preflight.OK
    blocked = preflight.region(settings(), "ap-southeast-7")
    assert blocked.status == preflight.BLOCK and blocked.detail.startswith(
        "model 'stable-diffusion': region 'ap-southeast-7' has no huggingface-pytorch-inference image")
    assert preflight.region(settings(models="gpt2-tgi"), "ap-southeast-7").status == preflight.OK
    assert preflight.region(settings(), None).status == preflight.BLOCK


def test_the_region_deployed_to_must_have_the_hosting_mode_even_when_synth_could_not_know():
    shared = settings(models="gpt2-cpu,minilm-embeddings", **{"gpt2-cpu.hosting": "shared",
                                                               "minilm-embeddings.hosting": "shared",
                                                               "minilm-embeddings.instance_type": "ml.m5.xlarge"})
    assert shared.region is None  # an environment-agnostic template: synth had no region to check
    blocked = preflight.region(shared, "us-west-1")
    assert blocked.status == preflight.BLOCK and blocked.detail.startswith(
        "model 'gpt2-cpu': hosting=shared (inference components) is not available in us-west-1 (it is in 16 regions")
    assert blocked.detail.count("is not available in us-west-1") == 2
    assert preflight.region(shared, "us-east-1").status == preflight.OK
    serverless = settings(models="minilm-embeddings", hosting="serverless")
    assert preflight.region(serverless, "ap-south-2").status == preflight.BLOCK
    budget = settings(monthly_budget_usd="100", alarm_email="ops@example.com")
    assert "monthly_budget_usd (AWS Budgets) is not available in eu-north-1" in preflight.region(
        budget, "eu-north-1").detail


@pytest.mark.parametrize("environ, explicit, region", [
    ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2"}, None, "eu-west-1"),  # as the AWS CLI: AWS_REGION
    ({"AWS_DEFAULT_REGION": "us-east-2"}, None, "us-east-2"),
    ({"AWS_REGION": "eu-west-1"}, "ap-south-1", "ap-south-1"),  # --region or the region setting first
    ({}, None, None),  # the profile's, as boto3 reads it
])
def test_the_region_is_the_one_the_cli_and_cdk_deploy_use(environ, explicit, region):
    from ops.cdk import cli_region

    assert cli_region(explicit, environ) == region


def test_make_preflight_checks_the_region_in_aws_region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    asked = []

    def factory(region):
        asked.append(region)
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        preflight.main([], clients_factory=factory, out=io.StringIO())
    assert asked == ["eu-central-1"]


@pytest.mark.parametrize("answer, status", [("14", preflight.OK), ("5", preflight.BLOCK), (None, preflight.BLOCK)])
def test_bootstrap(clients, answer, status):
    ssm = clients.stub("ssm")
    if answer is None:
        ssm.add_client_error("get_parameter", "ParameterNotFound", "no such parameter")
    else:
        ssm.add_response("get_parameter", {"Parameter": {"Name": preflight.BOOTSTRAP_PARAMETER, "Value": answer}},
                         {"Name": preflight.BOOTSTRAP_PARAMETER})
    check = preflight.bootstrap(clients, ACCOUNT, REGION)
    assert check.status == status
    if status == preflight.BLOCK:
        assert f"cdk bootstrap aws://{ACCOUNT}/{REGION}" in check.fix


def stub_quotas(clients, *pairs, others=()):
    clients.stub("service-quotas").add_response("list_service_quotas", quota_page(*pairs), {"ServiceCode": "sagemaker"})
    sagemaker = clients.stub("sagemaker")
    sagemaker.add_response("list_endpoints", {"Endpoints": [
        {"EndpointName": name, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
         "CreationTime": "2026-01-01", "LastModifiedTime": "2026-01-01", "EndpointStatus": "InService"}
        for name, _, _ in others]})
    for name, instance_type, count in others:
        sagemaker.add_response("describe_endpoint", {
            "EndpointName": name, "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x",
            "EndpointConfigName": f"{name}-config", "EndpointStatus": "InService", "CreationTime": "2026-01-01",
            "LastModifiedTime": "2026-01-01",
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": count}]})
        sagemaker.add_response("describe_endpoint_config", {
            "EndpointConfigName": f"{name}-config", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:x/y",
            "CreationTime": "2026-01-01",
            "ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": instance_type,
                                    "InitialInstanceCount": count, "ModelName": "m"}]})


@pytest.mark.parametrize("quota, others, status", [
    (2, (), preflight.OK),              # the instance and the blue/green twin of an update
    (1, (), preflight.WARN),            # the first deploy fits, an update would fail
    (0, (), preflight.BLOCK),           # new accounts often have 0 for GPU types
    (2, (("other", "ml.g5.xlarge", 1),), preflight.WARN),  # another endpoint already uses one
    (2, (("other", "ml.g5.xlarge", 2),), preflight.BLOCK),
])
def test_quota_covers_twice_the_instances_for_updates(clients, quota, others, status):
    stub_quotas(clients, ("ml.g5.xlarge", quota), others=others)
    check, = preflight.quotas(settings(), clients)
    assert check.status == status, check
    if status != preflight.OK:
        assert "ml.g5.xlarge for endpoint usage" in check.fix and "at least" in check.fix


def test_quotas_add_up_models_sharing_a_type(clients):
    stub_quotas(clients, ("ml.g5.xlarge", 4), ("ml.m5.xlarge", 2))
    checks = preflight.quotas(settings(models="stable-diffusion,chat-embeddings,gpt2-cpu"), clients)
    assert [(c.name, c.status) for c in checks] == [("quota ml.g5.xlarge", preflight.OK),
                                                    ("quota ml.m5.xlarge", preflight.OK)]
    assert "covers 2 and the 4 an update needs" in checks[0].detail


@pytest.mark.parametrize("mode, role, role_exists, status", [
    ("account-role", None, None, preflight.BLOCK),
    ("account-role", "arn:aws:iam::1:role/apigw-logs", True, preflight.OK),
    ("account-role", "arn:aws:iam::1:role/apigw-logs", False, preflight.BLOCK),
    ("create-role", None, None, preflight.OK),
    ("create-role", "arn:aws:iam::1:role/apigw-logs", None, preflight.WARN),
    ("off", None, None, preflight.OK),
])
def test_api_gateway_logging_role(clients, mode, role, role_exists, status):
    if mode != "off":
        clients.stub("apigateway").add_response("get_account", {"cloudwatchRoleArn": role} if role else {})
    if role_exists is not None:
        iam = clients.stub("iam")
        if role_exists:
            iam.add_response("get_role", {"Role": {"Path": "/", "RoleName": "apigw-logs", "RoleId": "AROAEXAMPLEID1234",
                                                   "Arn": role, "CreateDate": "2026-01-01"}},
                             {"RoleName": "apigw-logs"})
        else:
            iam.add_client_error("get_role", "NoSuchEntity", "gone")
    check = preflight.api_logging(settings(api_logging=mode), clients)
    assert check.status == status, check
    if status == preflight.BLOCK:
        assert "api_logging=create-role" in check.fix and "api_logging=off" in check.fix


@pytest.mark.parametrize("status, expected", [
    (None, preflight.OK), ("CREATE_COMPLETE", preflight.OK), ("ROLLBACK_COMPLETE", preflight.BLOCK),
    ("UPDATE_FAILED", preflight.WARN), ("UPDATE_IN_PROGRESS", preflight.WARN)])
def test_stack_state(clients, status, expected):
    cfn = clients.stub("cloudformation")
    if status is None:
        cfn.add_client_error("describe_stacks", "ValidationError", "Stack with id SageMakerModelApi does not exist")
    else:
        cfn.add_response("describe_stacks", {"Stacks": [{"StackName": "SageMakerModelApi", "StackStatus": status,
                                                         "CreationTime": "2026-01-01"}]})
    check, exists = preflight.stack_state(clients, "SageMakerModelApi")
    assert (check.status, exists) == (expected, status is not None)


@pytest.mark.parametrize("group_exists, endpoint_exists, status", [
    (False, False, preflight.OK), (True, False, preflight.BLOCK), (False, True, preflight.BLOCK)])
def test_names_the_stack_creates_must_be_free(clients, group_exists, endpoint_exists, status):
    group = "/aws/sagemaker/Endpoints/sagemakermodelapi-stable-diffusion"
    clients.stub("logs").add_response("describe_log_groups", {"logGroups": [{"logGroupName": group}] if group_exists
                                                              else []}, {"logGroupNamePrefix": group})
    sagemaker = clients.stub("sagemaker")
    if endpoint_exists:
        sagemaker.add_response("describe_endpoint", {
            "EndpointName": "x", "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x", "EndpointConfigName": "c",
            "EndpointStatus": "InService", "CreationTime": "2026-01-01", "LastModifiedTime": "2026-01-01"})
    else:
        sagemaker.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    checks = preflight.names_free(settings(), clients, stack_exists=False)
    assert {c.status for c in checks} == {status}
    assert preflight.names_free(settings(), clients, stack_exists=True) == []


def test_references_must_exist(clients):
    spec = '{"mine": {"kind": "text-generation", "source": "s3://my-models/llm/model.tar.gz", "container": "tgi"}}'
    configured = settings(models="mine,jumpstart-stable-diffusion", model_specs=spec, hub_token_secret="hf",
                          **{"jumpstart-stable-diffusion.source": "endpoint:js-sd"})
    clients.stub("secretsmanager").add_client_error("describe_secret", "ResourceNotFoundException", "no")
    clients.stub("s3").add_response("head_object", {}, {"Bucket": "my-models", "Key": "llm/model.tar.gz"})
    clients.stub("sagemaker").add_client_error("describe_endpoint", "ValidationException", "Could not find")
    checks = {c.name: c.status for c in preflight.references(configured, clients)}
    assert checks == {"hub token secret": preflight.BLOCK, "artifact mine": preflight.OK,
                      "endpoint jumpstart-stable-diffusion": preflight.BLOCK}


@pytest.mark.parametrize("answer,status", [("ok", preflight.OK), ("missing", preflight.BLOCK)])
def test_the_cognito_user_pool_of_auth_cognito_must_exist(clients, answer, status):
    configured = settings(auth="cognito",
                          cognito_user_pool_arn="arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbC123")
    stub = clients.stub("cognito-idp")
    if answer == "ok":
        stub.add_response("describe_user_pool", {"UserPool": {"Id": "us-east-1_AbC123", "Name": "staff"}},
                          {"UserPoolId": "us-east-1_AbC123"})
    else:
        stub.add_client_error("describe_user_pool", "ResourceNotFoundException", "User pool does not exist.",
                              expected_params={"UserPoolId": "us-east-1_AbC123"})
    check, = preflight.references(configured, clients)
    assert (check.name, check.status) == ("cognito user pool", status)
    assert ("staff (us-east-1_AbC123)" if answer == "ok" else "ResourceNotFoundException") in check.detail


def test_unpinned_hub_revisions_warn_and_cost_is_shown_or_unknown():
    assert preflight.hub_revisions(settings()) == []  # every preset is pinned
    warning, = preflight.hub_revisions(settings(revision="none"))
    assert warning.status == preflight.WARN and "stable-diffusion" in warning.detail
    cost = preflight.hourly_cost(settings(instance_count="2"), "us-east-1")
    assert cost.status == preflight.INFO and "$2.82/hour" in cost.detail and "~$2,056/month" in cost.detail
    assert preflight.hourly_cost(settings(), "eu-west-1").status == preflight.WARN


def test_a_blocker_makes_the_command_fail_with_one_table(clients):
    clients.stub("sts").add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": "arn:aws:iam::1:user/me",
                                                             "UserId": "x"})
    clients.stub("cloudformation").add_client_error("describe_stacks", "ValidationError", "does not exist")
    clients.stub("ssm").add_response("get_parameter", {"Parameter": {"Value": "27"}})
    stub_quotas(clients, ("ml.g5.xlarge", 2))
    clients.stub("apigateway").add_response("get_account", {})
    clients.stub("logs").add_response("describe_log_groups", {"logGroups": []})
    clients.stub("sagemaker").add_client_error("describe_endpoint", "ValidationException", "Could not find")
    clients.stub("lambda").add_response("get_account_settings", LAMBDA_ACCOUNT(1000))
    out = io.StringIO()
    code = preflight.main(["-c", "region=us-east-1", "-c", "revision=none"], clients_factory=lambda region: clients,
                          out=out, hub_listing=lambda repo, revision: ["unet/diffusion_pytorch_model.safetensors"])
    text = out.getvalue()
    assert code == 1
    assert "BLOCKER  API Gateway logging" in text and "1 blocker(s)" in text and "ok       CDK bootstrap" in text
    assert "warning  hub revisions" in text and "info     cost" in text
    assert "ok       authorizer concurrency" in text and "ok       hub weights stable-diffusion" in text


def LAMBDA_ACCOUNT(unreserved: int) -> dict:
    return {"AccountLimit": {"TotalCodeSize": 1, "CodeSizeUnzipped": 1, "CodeSizeZipped": 1,
                             "ConcurrentExecutions": unreserved, "UnreservedConcurrentExecutions": unreserved},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0}}


@pytest.mark.parametrize("unreserved, exists, status", [(1000, False, preflight.OK), (110, False, preflight.OK),
                                                        (109, False, preflight.BLOCK), (10, False, preflight.BLOCK),
                                                        (10, True, preflight.WARN)])
def test_the_key_authorizers_reserved_concurrency_must_fit_the_account(clients, unreserved, exists, status):
    clients.stub("lambda").add_response("get_account_settings", LAMBDA_ACCOUNT(unreserved))
    check, = preflight.authorizer_concurrency(settings(), clients, exists)
    assert check.status == status, check
    if status != preflight.OK:
        assert f"the account has {unreserved} unreserved Lambda concurrency; reserving 10 for the key authorizer " \
               f"leaves {unreserved - 10}, under the 100 Lambda keeps unreserved" in check.detail
        assert check.fix.startswith("-c authorizer_concurrency=0 (reserve none)")
    # Nothing reserved, or no key authorizer: nothing to check (and no call made).
    for values in ({"authorizer_concurrency": "0"}, {"bearer_keys": "false"}, {"auth": "iam"}):
        assert preflight.authorizer_concurrency(settings(**values), clients, exists) == []


@pytest.mark.parametrize("listing, status, fragment", [
    (["model.safetensors", "pytorch_model.bin", "config.json"], preflight.OK, "has safetensors"),
    (["pytorch_model.bin", "config.json"], preflight.BLOCK, "has only pickle weights (pytorch_model.bin)"),
    (["config.json"], preflight.WARN, "lists no weight files"),
    (OSError("offline"), preflight.WARN, "could not list openai-community/gpt2@607a30d783df: OSError"),
])
def test_hub_models_need_safetensors_unless_pickle_is_allowed(listing, status, fragment):
    asked = []

    def hub(repo, revision):
        asked.append((repo, revision))
        if isinstance(listing, Exception):
            raise listing
        return listing

    check, = preflight.hub_weights(settings(models="gpt2-cpu"), hub)
    assert (check.name, check.status) == ("hub weights gpt2-cpu", status) and fragment in check.detail
    assert asked == [("openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e")]  # the pinned commit
    assert preflight.hub_weights(settings(models="gpt2-cpu", allow_pickle_weights="true"), hub) == []


@pytest.mark.parametrize("secret, field, status, fragment", [
    ("hf_abc", None, preflight.OK, "the secret's whole value is the token"),
    ('{"HF_TOKEN": "hf_abc", "note": "x"}', None, preflight.BLOCK, "holds a JSON object with keys HF_TOKEN, note"),
    ('{"HF_TOKEN": "hf_abc"}', "HF_TOKEN", preflight.OK, "the token under 'HF_TOKEN' reaches the model"),
    ('{"HF_TOKEN": "hf_abc"}', "token", preflight.BLOCK, "has no text under 'token'"),
    ("hf_abc", "token", preflight.BLOCK, "is not a JSON object, and hub_token_field is 'token'"),
])
def test_a_json_hub_token_secret_must_name_its_token_field(clients, secret, field, status, fragment):
    clients.stub("secretsmanager").add_response("get_secret_value", {"SecretString": secret, "Name": "hf"})
    values = {"hub_token_secret": "hf", **({"hub_token_field": field} if field else {})}
    check, = preflight.hub_token_shape(settings(**values), clients)
    assert check.status == status and fragment in check.detail
    assert "hf_abc" not in check.detail + check.fix  # the value is never shown
    clients.stub("secretsmanager").add_client_error("get_secret_value", "AccessDeniedException", "no")
    assert preflight.hub_token_shape(settings(**values), clients)[0].status == preflight.WARN


def test_settings_errors_are_reported_not_thrown():
    out = io.StringIO()
    assert preflight.main(["-c", "instance_type=ml.zz9.xlarge"], out=out) == 2
    assert "unknown instance family" in out.getvalue()


def deployed(clients, variant: dict, name="sagemakermodelapi-stable-diffusion", config: dict | None = None,
             model: str | None = "m"):
    sagemaker = clients.stub("sagemaker")
    sagemaker.add_response("describe_endpoint", {
        "EndpointName": name, "EndpointArn": f"arn:aws:sagemaker:us-east-1:1:endpoint/{name}",
        "EndpointConfigName": "c1", "EndpointStatus": "InService", "CreationTime": "2026-01-01",
        "LastModifiedTime": "2026-01-01"}, {"EndpointName": name})
    sagemaker.add_response("describe_endpoint_config", {
        "EndpointConfigName": "c1", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c1",
        "CreationTime": "2026-01-01", "ProductionVariants": [{"VariantName": "AllTraffic", **variant,
                                                               **({"ModelName": model} if model else {})}],
        **(config or {})}, {"EndpointConfigName": "c1"})


def scalable(clients, registered: bool, name="sagemakermodelapi-stable-diffusion"):
    target = {"ServiceNamespace": "sagemaker", "ResourceId": f"endpoint/{name}/variant/AllTraffic",
              "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 3,
              "RoleARN": "arn:aws:iam::1:role/x", "CreationTime": "2026-01-01"}
    clients.stub("application-autoscaling").add_response(
        "describe_scalable_targets", {"ScalableTargets": [target] if registered else []},
        {"ServiceNamespace": "sagemaker", "ResourceIds": [f"endpoint/{name}/variant/AllTraffic"]})


def test_an_autoscaled_endpoint_cannot_change_instance_type_in_place(clients):
    deployed(clients, {"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1})
    scalable(clients, registered=True)
    check, = preflight.hosting_changes(settings(instance_type="ml.g5.2xlarge", max_instances="3"), clients, True)
    assert check.status == preflight.BLOCK and "refuses to change an autoscaled variant" in check.detail
    assert "-c stable-diffusion.max_instances=1" in check.fix


def test_a_type_change_without_autoscaling_and_same_type_pass(clients):
    deployed(clients, {"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1})
    scalable(clients, registered=False)
    assert preflight.hosting_changes(settings(instance_type="ml.g5.2xlarge"), clients, True) == []
    deployed(clients, {"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1})
    assert preflight.hosting_changes(settings(max_instances="2"), clients, True) == []  # no scaling lookup needed


def test_switching_between_serverless_and_instances_is_a_blocker(clients):
    name = "sagemakermodelapi-minilm-embeddings"
    deployed(clients, {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}, name)
    check, = preflight.hosting_changes(settings(models="minilm-embeddings", hosting="serverless"), clients, True)
    assert check.status == preflight.BLOCK and "runs realtime" in check.detail
    deployed(clients, {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}, name)
    check, = preflight.hosting_changes(settings(models="minilm-embeddings"), clients, True)
    assert check.status == preflight.BLOCK and "runs serverless" in check.detail


def test_switching_between_realtime_async_and_shared_is_a_blocker(clients):
    deployed(clients, {"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1})
    check, = preflight.hosting_changes(settings(hosting="async"), clients, True)
    assert check.status == preflight.BLOCK and "runs realtime" in check.detail
    deployed(clients, {"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1},
             config={"AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b/jobs/output/m"}}})
    check, = preflight.hosting_changes(settings(), clients, True)
    assert check.status == preflight.BLOCK and "runs async" in check.detail
    deployed(clients, {"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}, model=None)
    check, = preflight.hosting_changes(settings(), clients, True)
    assert check.status == preflight.BLOCK and "runs shared" in check.detail


def test_quotas_count_async_ceilings_and_the_shared_endpoint_once(clients):
    wanted = preflight.wanted_instances(settings(
        models="stable-diffusion,gpt2-cpu,minilm-embeddings", **{
            "stable-diffusion.hosting": "async", "stable-diffusion.max_instances": "3",
            "gpt2-cpu.hosting": "shared", "minilm-embeddings.hosting": "shared",
            "minilm-embeddings.instance_type": "ml.m5.xlarge", "shared_instances": "2"}))
    assert wanted == {"ml.g5.xlarge": 3, "ml.m5.xlarge": 2}


def test_hosting_is_not_looked_up_before_the_first_deploy_or_for_a_missing_endpoint(clients):
    assert preflight.hosting_changes(settings(), clients, stack_exists=False) == []
    clients.stub("sagemaker").add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    assert preflight.hosting_changes(settings(), clients, stack_exists=True) == []
    clients.stub("sagemaker").add_client_error("describe_endpoint", "AccessDeniedException", "no")
    check, = preflight.hosting_changes(settings(), clients, stack_exists=True)
    assert check.status == preflight.WARN


SUBNETS = "subnet-0123456789abcdef0,subnet-0123456789abcdef1"
VPC = "vpc-0123456789abcdef0"


def in_your_vpc(**values):
    return settings(vpc_id=VPC, subnet_ids=SUBNETS, route_table_ids="rtb-0123456789abcdef0", **values)


def stub_network(clients, zones=("us-east-1a", "us-east-1b"), vpcs=(VPC, VPC), endpoints=(),
                 route_table="rtb-0123456789abcdef0"):
    clients.stub("ec2").add_response("describe_subnets", {"Subnets": [
        {"SubnetId": s, "VpcId": v, "AvailabilityZone": z} for s, v, z in zip(SUBNETS.split(","), vpcs, zones)]},
        {"SubnetIds": SUBNETS.split(",")})
    clients.stub("ec2").add_response("describe_vpc_endpoints", {"VpcEndpoints": [
        {"VpcEndpointId": f"vpce-{i}", "ServiceName": f"com.amazonaws.{REGION}.{service}", "State": "available",
         "VpcEndpointType": "Gateway" if service == "s3" else "Interface", "PrivateDnsEnabled": service != "s3",
         "RouteTableIds": [route_table] if service == "s3" else [], "VpcId": VPC}
        for i, service in enumerate(endpoints)]},
        {"Filters": [{"Name": "vpc-id", "Values": [VPC]}]})


def test_your_vpc_needs_its_subnets_in_two_zones(clients):
    stub_network(clients)
    checks = {c.name: c for c in preflight.network(in_your_vpc(), clients)}
    assert checks["network subnets"].status == preflight.OK and "us-east-1a, us-east-1b" in checks[
        "network subnets"].detail
    assert checks["network endpoints"].status == preflight.OK
    stub_network(clients, zones=("us-east-1a", "us-east-1a"))
    one_zone = {c.name: c for c in preflight.network(in_your_vpc(), clients)}["network subnets"]
    assert one_zone.status == preflight.BLOCK and "SageMaker needs two zones" in one_zone.detail
    stub_network(clients, vpcs=(VPC, "vpc-0ffffffffffffffff"))
    other = {c.name: c for c in preflight.network(in_your_vpc(), clients)}["network subnets"]
    assert other.status == preflight.BLOCK and "subnet-0123456789abcdef1 not in" in other.detail


def test_endpoints_the_stack_would_duplicate_block_and_name_what_to_skip(clients):
    stub_network(clients, endpoints=("s3", "sagemaker.runtime"))
    clash = {c.name: c for c in preflight.network(in_your_vpc(), clients)}["network endpoints"]
    assert clash.status == preflight.BLOCK and "already has endpoints for sagemaker.runtime, s3" in clash.detail
    assert clash.fix == "-c vpc_endpoints_skip=s3,sagemaker.runtime"
    # Another route table's S3 gateway endpoint is no clash: one route per prefix list and route table.
    stub_network(clients, endpoints=("s3", "sagemaker.runtime"), route_table="rtb-0ffffffffffffffff")
    other = {c.name: c for c in preflight.network(in_your_vpc(), clients)}["network endpoints"]
    assert other.fix == "-c vpc_endpoints_skip=sagemaker.runtime"
    stub_network(clients, endpoints=("s3", "sagemaker.runtime"))
    skipped = [c for c in preflight.network(in_your_vpc(vpc_endpoints_skip="s3,sagemaker.runtime"), clients)
               if c.name == "network endpoints"]
    assert [c.status for c in skipped] == [preflight.OK]
    assert skipped[0].detail == ("the stack creates endpoints for logs, sts; s3, sagemaker.runtime are the VPC's own")


def test_endpoints_skipped_but_missing_warn(clients):
    stub_network(clients, endpoints=("s3", "sagemaker.runtime"))
    missing = {c.name: c for c in preflight.network(in_your_vpc(vpc_endpoints="false"), clients)}["network endpoints"]
    # Stable Diffusion makes images: the Lambda needs STS for its URL signer, and logs are in the list too.
    assert missing.status == preflight.WARN and "has no endpoint for logs, sts" in missing.detail
    stub_network(clients, endpoints=("s3",))
    one = {c.name: c for c in preflight.network(in_your_vpc(vpc_endpoints_skip="s3,sts"), clients)}
    assert one["network endpoints"].status == preflight.WARN and "no endpoint for sts," in one["network endpoints"].detail
    stub_network(clients, endpoints=("s3", "sagemaker.runtime", "logs", "sts"))
    ready = {c.name: c for c in preflight.network(in_your_vpc(vpc_endpoints="false"), clients)}["network endpoints"]
    assert ready.status == preflight.OK


def test_open_endpoint_policies_in_your_vpc_are_said_with_how_to_restrict_them(clients):
    stub_network(clients)
    found = {c.name: c for c in preflight.network(in_your_vpc(), clients)}
    assert found["network endpoint policies"].status == preflight.INFO
    assert "vpc_endpoint_policies=restrict" in found["network endpoint policies"].fix
    stub_network(clients)
    restricted = {c.name for c in preflight.network(in_your_vpc(vpc_endpoint_policies="restrict"), clients)}
    assert "network endpoint policies" not in restricted


def test_network_is_not_checked_without_a_vpc_of_yours(clients):
    assert preflight.network(settings(), clients) == []
    clients.stub("ec2").add_client_error("describe_subnets", "InvalidSubnetID.NotFound", "no such subnet")
    failed, = preflight.network(in_your_vpc(), clients)
    assert failed.status == preflight.BLOCK and "InvalidSubnetID.NotFound" in failed.detail


def test_the_cost_while_deployed_leaves_out_batch_jobs_and_counts_vpc_endpoints():
    base = preflight.hourly_cost(settings(), "us-east-1").detail
    assert preflight.hourly_cost(settings(**{"stable-diffusion.batch": "true"}), "us-east-1").detail == base
    spec = '{"mine": {"kind": "text-generation", "source": "s3://my-models/llm/model.tar.gz", "task": "text-generation", ' \
           '"instance_type": "ml.m5.xlarge"}}'
    private = preflight.hourly_cost(settings(models="mine", model_specs=spec, vpc="create"), "us-east-1")
    assert "$0.31/hour" in private.detail  # $0.269 instance + 2 interface endpoints x 2 zones x $0.01


def test_batch_models_need_a_transform_job_quota_for_their_default_instances(clients):
    configured = settings(models="stable-diffusion,gpt2-cpu", **{"stable-diffusion.batch": "true",
                                                                 "gpt2-cpu.batch": "true",
                                                                 "gpt2-cpu.hosting": "serverless"})
    page = quota_page(("ml.g5.xlarge", 2))
    page["Quotas"].append({"QuotaName": "ml.g5.xlarge for transform job usage", "Value": 0.0,
                           "ServiceCode": "sagemaker", "QuotaCode": "L-2"})
    clients.stub("service-quotas").add_response("list_service_quotas", page, {"ServiceCode": "sagemaker"})
    clients.stub("sagemaker").add_response("list_endpoints", {"Endpoints": []})
    checks = {c.name: c for c in preflight.quotas(configured, clients)}
    gpu, cpu = checks["batch quota ml.g5.xlarge"], checks["batch quota ml.m5.xlarge"]
    assert gpu.status == preflight.WARN and "make batch for stable-diffusion would fail" in gpu.detail
    assert "for transform job usage' of at least 1" in gpu.fix
    # The serverless model's jobs run on a CPU instance by default; its quota is not listed at all here.
    assert cpu.status == preflight.WARN and "no quota named 'ml.m5.xlarge for transform job usage'" in cpu.detail
    assert checks["quota ml.g5.xlarge"].status == preflight.OK
    assert preflight.batch_instances(settings()) == {}


def test_cost_of_a_region_the_table_lacks_comes_from_the_price_list_api(clients):
    import json

    def product(usd):
        return json.dumps({"product": {"sku": "S"}, "terms": {"OnDemand": {"S.T": {"priceDimensions": {
            "S.T.R": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}}})

    clients.stub_other("pricing", "us-east-1").add_response("get_products", {"PriceList": [product("1.725")]})
    check = preflight.hourly_cost(settings(), "eu-west-3", clients)
    assert check.status == preflight.INFO and "$1.73/hour" in check.detail and "AWS Price List API" in check.detail
    clients.stub_other("pricing", "us-east-1").add_client_error("get_products", "AccessDeniedException")
    refused = preflight.hourly_cost(settings(models="gpt2-cpu"), "eu-west-3", clients)
    assert refused.status == preflight.WARN and "pricing:GetProducts" in refused.detail
    assert preflight.hourly_cost(settings(), "us-east-1", clients).status == preflight.INFO  # recorded: no call


def test_a_streaming_model_warns_that_lambda_streaming_is_not_in_every_region():
    assert preflight.streaming_region(settings(), "eu-west-1") == []
    warning, = preflight.streaming_region(settings(models="gpt2-tgi", **{"gpt2-tgi.streaming": "true"}), "eu-west-1")
    assert warning.status == preflight.WARN and warning.detail.startswith("gpt2-tgi stream through Lambda response")
    assert "not yet available in all AWS Regions" in warning.detail and "check eu-west-1 on" in warning.fix


@pytest.mark.parametrize("values, status, fragment", [
    ({}, None, None),  # an always-on instance: its cost is the same busy or idle
    ({"models": "minilm-embeddings", "hosting": "serverless"}, None, None),  # billed per second, bounded by quota
    ({"hosting": "async"}, preflight.WARN, "stable-diffusion scales to zero and cost nothing idle, but a request every "
                                           "~15 minutes keeps an instance running all day, and no one is told: no "
                                           "alarm_email"),
    ({"hosting": "async", "alarm_email": "me@example.com"}, preflight.INFO, "mails me@example.com; no budget"),
    ({"hosting": "async", "alarm_email": "me@example.com", "monthly_budget_usd": "100"}, preflight.OK,
     "a $100 budget mail me@example.com"),
    ({"hosting": "async", "min_instances": "1"}, None, None),
])
def test_a_model_that_scales_to_zero_without_alarm_email_is_said_plainly(values, status, fragment):
    found = preflight.unwatched_spend(settings(**values))
    assert [c.status for c in found] == ([status] if status else [])
    if fragment:
        assert fragment in found[0].detail
