"""Every synthesized template (each preset, all models together, and the setting variants that change IAM): no
wildcard grants, no secrets, nothing left behind on delete, and updates that replace model and config cleanly."""

from __future__ import annotations

import json
import re

import pytest
from cfn_render import resources

from deployment.model_catalog import PRESETS

# Actions AWS allows only on Resource "*": nothing narrower exists for them.
STAR_RESOURCE_ALLOWED = {
    "ecr:GetAuthorizationToken",  # no resource type: the token is account-wide
    "cloudwatch:PutMetricData",  # no resource type; scoped by a cloudwatch:namespace condition instead
}
# What SageMaker's and Lambda's roles need to attach to a VPC, on "*" as AWS documents them.
VPC_STAR_ACTIONS = {
    "ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs", "ec2:UnassignPrivateIpAddresses"}
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
VARIANTS = {
    **{name: {"models": name} for name in PRESETS if PRESETS[name].existing_endpoint is None},
    "jumpstart": {"models": "jumpstart-stable-diffusion", "jumpstart-stable-diffusion.source": "endpoint:js-sd"},
    "all": {"models": ",".join(PRESETS), "jumpstart-stable-diffusion.source": "endpoint:js-sd"},
    "kms-ebs": {"kms_key_arn": KMS_KEY, "instance_type": "ml.p3.2xlarge", "waf": "true"},
    "logging-role": {"api_logging": "create-role", "snapstart": "true"},
    "logging-off": {"api_logging": "off"},
    "retained-token": {"retain_bucket": "true", "hub_token_secret": "prod/hf-token"},
    "tgi-token": {"models": "gpt2-tgi", "hub_token_secret": "prod/hf-token"},
    "hosting-modes": {"models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.max_instances": "3",
                      "minilm-embeddings.hosting": "serverless",
                      "cors_origins": "https://app.example.com,http://localhost:3000", "bearer_keys": "false"},
    # The same settings as test_nag_and_lint's async-kms variant: one cached synth for both.
    "async-kms": {"models": "stable-diffusion,gpt2-cpu", "stable-diffusion.hosting": "async",
                  "gpt2-cpu.hosting": "async", "gpt2-cpu.min_instances": "1", "gpt2-cpu.max_instances": "2",
                  "kms_key_arn": KMS_KEY, "alarm_email": "oncall@example.com", "stable-diffusion.batch": "true"},
    # The same settings as test_nag_and_lint's shared variant.
    "shared": {"models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting": "shared",
               "minilm-embeddings.hosting": "shared", "minilm-embeddings.instance_type": "ml.m5.xlarge",
               "gpt2-cpu.max_instances": "3", "minilm-embeddings.min_instances": "0", "shared_max_instances": "2",
               "tracing": "true", "gpt2-cpu.batch": "true"},
    "vpc-create": {"vpc": "create", "models": "mine", "mine.batch": "true", "mine.network_isolation": "true",
                   "model_specs": json.dumps({"mine": {"kind": "text-to-image", "source": "s3://my-models/sd/model.tar.gz",
                                                       "instance_type": "ml.g5.xlarge"}})},
    "vpc-existing": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
                     "route_table_ids": "rtb-0123456789abcdef0,rtb-0123456789abcdef1", "models": "gpt2-cpu,minilm-embeddings",
                     "gpt2-cpu.hosting": "shared", "minilm-embeddings.hosting": "shared",
                     "minilm-embeddings.instance_type": "ml.m5.xlarge", "tracing": "true"},
    "vpc-no-endpoints": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
                         "vpc_endpoints": "false"},
    "auth-iam": {"auth": "iam", "models": "stable-diffusion,minilm-embeddings"},
    "auth-cognito": {"auth": "cognito", "cognito_user_pool_arn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123", "cors_origins": "*"},
    "s3-artifact": {"models": "mine", "model_specs": json.dumps(
        {"mine": {"kind": "text-generation", "source": "s3://my-models/llm/model.tar.gz", "container": "tgi"}})},
}


@pytest.fixture(scope="module", params=sorted(VARIANTS), ids=sorted(VARIANTS))
def variant(request, synth):
    return request.param, synth(**VARIANTS[request.param])


def allow_statements(template):
    """(where, statement) for every Allow statement of every identity and resource policy in the template."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy",
                                "AWS::SNS::TopicPolicy"):
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::KMS::Key":
            documents.append(props["KeyPolicy"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] == "Allow":
                    yield logical_id, statement


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions_or_resources(variant):
    name, template = variant
    checked = 0
    for where, statement in allow_statements(template):
        if "Principal" in statement and statement.get("Action") == "sts:AssumeRole":
            continue
        actions = as_list(statement["Action"])
        if template["Resources"][where]["Type"] == "AWS::KMS::Key":
            # In a key policy "*" is the key itself. kms:* only for the account root: AWS's default key policy,
            # which keeps the key manageable through IAM (KMS Developer Guide, "Default key policy").
            if actions == ["kms:*"]:
                assert statement["Principal"] == {"AWS": {"Fn::Join": ["", [
                    "arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}}, statement
            else:
                assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}, statement
                assert sorted(actions) == ["kms:Decrypt", "kms:GenerateDataKey*"], statement
            checked += 1
            continue
        for action in actions:
            assert action != "*", (name, where, statement)
            assert not re.fullmatch(r"[a-z0-9-]+:\*", action), (name, where, statement)
        if "*" in as_list(statement.get("Resource", [])):
            # X-Ray takes no resource: allowed on "*" only where tracing is on, and then only these two actions.
            traced = VARIANTS[name].get("tracing") == "true"
            allowed = STAR_RESOURCE_ALLOWED | ({"xray:PutTraceSegments", "xray:PutTelemetryRecords"} if traced else set())
            # Network interfaces in a VPC: only where the settings put the stack in one (stacks/private_network.py).
            in_vpc = VARIANTS[name].get("vpc") == "create" or "vpc_id" in VARIANTS[name]
            allowed |= VPC_STAR_ACTIONS if in_vpc else set()
            assert set(actions) <= allowed, (name, where, statement)
            if "cloudwatch:PutMetricData" in actions:
                assert statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
        if re.search(r"log-group:\*", json.dumps(statement.get("Resource"))):
            # Every log group of the region: only API Gateway's account-wide logging role, which the deployer
            # asked the stack to create (api_logging=create-role), serves every API there.
            assert name == "logging-role" and "AccountCloudWatchRole" in where, (name, where, statement)
        checked += 1
    assert checked > 3  # the walk found the policies


def test_no_managed_policies_at_all(variant):
    _, template = variant
    for resource in resources(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in resource["Properties"]


def test_no_secret_in_the_template(variant):
    name, template = variant
    text = json.dumps(template)
    for pattern in (r"AKIA[0-9A-Z]{16}", r"hf_[A-Za-z0-9]{20,}", r"-----BEGIN", r"aws_secret_access_key"):
        assert not re.search(pattern, text), (name, pattern)
    if name == "tgi-token":
        # TGI reads the token from its environment: a dynamic reference, resolved at deploy time only.
        assert "{{resolve:secretsmanager:prod/hf-token:SecretString:::}}" in text
    if name == "retained-token":
        # Stable Diffusion's model_fn reads the secret itself: not even a reference in the model's environment.
        assert "resolve:secretsmanager" not in text and '"HF_TOKEN_SECRET_ID": "prod/hf-token"' in text


def test_everything_goes_away_on_delete(variant):
    name, template = variant
    for logical_id, resource in template["Resources"].items():
        retained = resource.get("DeletionPolicy") == "Retain" or resource.get("UpdateReplacePolicy") == "Retain"
        if retained and name == "logging-role":
            # What api_logging=create-role says it keeps: the account-wide logging role and setting (README).
            assert resource["Type"] in ("AWS::IAM::Role", "AWS::ApiGateway::Account"), logical_id
        elif retained:
            assert name == "retained-token" and resource["Type"] == "AWS::S3::Bucket", logical_id
    buckets = resources(template, "AWS::S3::Bucket")
    emptiers = resources(template, "AWS::CloudFormation::CustomResource")
    if buckets and name != "retained-token":
        bucket_id, = buckets
        emptier, = emptiers.values()
        assert emptier["Properties"]["BucketName"] == {"Ref": bucket_id}
    else:
        assert emptiers == {}


def test_every_log_group_is_the_stacks_own_with_a_retention(variant):
    name, template = variant
    groups = resources(template, "AWS::Logs::LogGroup")
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30 and group["DeletionPolicy"] == "Delete"
    # Every Lambda writes to a log group of the stack (Lambda would otherwise make one that outlives it) ...
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups, logical_id
    # ... and so does every endpoint (SageMaker writes to /aws/sagemaker/Endpoints/<name>).
    names = {g["Properties"].get("LogGroupName") for g in groups.values()}
    for endpoint in resources(template, "AWS::SageMaker::Endpoint").values():
        assert f"/aws/sagemaker/Endpoints/{endpoint['Properties']['EndpointName']}" in names


def test_models_and_configs_are_unnamed_so_changes_replace_them_cleanly(variant):
    _, template = variant
    for model in resources(template, "AWS::SageMaker::Model").values():
        assert "ModelName" not in model["Properties"]
    for config in resources(template, "AWS::SageMaker::EndpointConfig").values():
        assert "EndpointConfigName" not in config["Properties"]


def test_an_instance_change_updates_the_endpoint_in_place(synth):
    before, after = synth(), synth(instance_type="ml.g6.xlarge")
    endpoints = [resources(t, "AWS::SageMaker::Endpoint") for t in (before, after)]
    assert endpoints[0] == endpoints[1]  # same logical id, same name, same reference to the config's attribute
    configs = [resources(t, "AWS::SageMaker::EndpointConfig") for t in (before, after)]
    assert configs[0].keys() == configs[1].keys() and configs[0] != configs[1]
    # The changed config gets a new generated name (replacement) and the endpoint moves to it: UpdateEndpoint.
    models = [resources(t, "AWS::SageMaker::Model") for t in (before, after)]
    assert models[0] == models[1]
