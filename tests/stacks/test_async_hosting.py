"""hosting=async: ModelEndpoint with an ImageBucket holding its jobs (aws_cdk.assertions), the settings' checks, and
the whole app's grants, routes and scaling."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from deployment.container_images import ContainerImage
from deployment.hosting import Async
from deployment.settings import Settings, SettingsError
from stacks.image_bucket import ImageBucket
from stacks.model_endpoint import ModelEndpoint

IMAGE_URI = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.6.0-gpu"
ASYNC_SD = {"stable-diffusion.hosting": "async"}


def async_stack(hosting: Async, **props):
    stack = Stack(App(), "T")
    bucket = ImageBucket(stack, "Jobs", job_prefix="jobs/")
    endpoint = ModelEndpoint(stack, "Model", image=ContainerImage.from_uri(IMAGE_URI), endpoint_name="sd",
                             hosting=hosting, job_bucket=bucket, job_model="sd", **props)
    return stack, bucket, endpoint


def statements_of(template: dict, logical_id: str) -> list[dict]:
    role = template["Resources"][logical_id]["Properties"]
    return [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def test_async_endpoint_writes_answers_and_failures_under_its_own_job_folders():
    stack, bucket, endpoint = async_stack(Async("ml.g5.xlarge", 0, 3, max_concurrent_invocations=2))
    template = Template.from_stack(stack)
    bucket_ref = {"Ref": stack.get_logical_id(bucket.bucket.node.default_child)}
    template.has_resource_properties("AWS::SageMaker::EndpointConfig", {
        "AsyncInferenceConfig": {
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
            "OutputConfig": {"S3OutputPath": {"Fn::Join": ["", ["s3://", bucket_ref, "/jobs/output/sd"]]},
                             "S3FailurePath": {"Fn::Join": ["", ["s3://", bucket_ref, "/jobs/failures/sd"]]}}},
        # SageMaker needs one instance at creation (InitialInstanceCount >= 1); scaling takes it to zero.
        "ProductionVariants": [Match.object_like({"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1})]})
    statements = {s.get("Sid"): s for s in statements_of(template.to_json(), stack.get_logical_id(
        endpoint.role.node.default_child))}
    bucket_arn = {"Fn::GetAtt": [bucket_ref["Ref"], "Arn"]}
    assert statements["ReadJobInputs"]["Action"] == "s3:GetObject"
    assert statements["ReadJobInputs"]["Resource"] == {"Fn::Join": ["", [bucket_arn, "/jobs/*/input-sd.json"]]}
    assert statements["WriteJobOutcomes"]["Action"] == "s3:PutObject"
    assert statements["WriteJobOutcomes"]["Resource"] == [
        {"Fn::Join": ["", [bucket_arn, "/jobs/output/sd/*"]]}, {"Fn::Join": ["", [bucket_arn, "/jobs/failures/sd/*"]]}]


def test_scale_to_zero_tracks_the_backlog_and_starts_an_instance_when_jobs_wait_at_zero():
    stack, _, endpoint = async_stack(Async("ml.g5.xlarge", 0, 3, target_backlog=4, scale_in_cooldown_seconds=600))
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {
        "MinCapacity": 0, "MaxCapacity": 3, "ResourceId": "endpoint/sd/variant/AllTraffic"})
    template.has_resource_properties("AWS::ApplicationAutoScaling::ScalingPolicy", {
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 4, "ScaleInCooldown": 600, "ScaleOutCooldown": 300,
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                "Statistic": "Average", "Dimensions": [{"Name": "EndpointName", "Value": "sd"}]}}})
    policies = template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy",
                                       {"Properties": {"PolicyType": "StepScaling"}})
    (step_id, step), = policies.items()
    assert step["Properties"]["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity", "Cooldown": 300, "MetricAggregationType": "Average",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "HasBacklogWithoutCapacity", "Namespace": "AWS/SageMaker", "Statistic": "Average",
        "Dimensions": [{"Name": "EndpointName", "Value": "sd"}], "Period": 60, "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "AlarmActions": [{"Ref": step_id}]})
    assert endpoint.backlog_alarm is not None
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"RetainAllVariantProperties": True})
    template.resource_count_is("AWS::IAM::Role", 1 + 1)  # execution role and the bucket emptier: no scaling role


def test_a_floor_above_zero_needs_no_start_policy_and_a_fixed_count_no_scaling():
    stack, _, endpoint = async_stack(Async("ml.g5.xlarge", 1, 2))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 1)
    template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    stack, _, endpoint = async_stack(Async("ml.g5.xlarge", 2, 2))
    Template.from_stack(stack).resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    assert endpoint.scalable_target is None


def test_grant_invoke_of_an_async_endpoint_is_invoke_endpoint_async_only():
    stack, _, endpoint = async_stack(Async("ml.g5.xlarge"))
    role = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    endpoint.grant_invoke(role)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": [{
        "Action": "sagemaker:InvokeEndpointAsync", "Effect": "Allow", "Resource": Match.any_value()}]}})


def test_async_needs_a_job_bucket_and_checks_its_bounds_in_one_message():
    stack = Stack(App(), "T")
    with pytest.raises(ValueError) as caught:
        ModelEndpoint(stack, "M", image=ContainerImage.from_uri(IMAGE_URI),
                      hosting=Async("ml.g5.xlarge", 0, 0, target_backlog=0, job_timeout_seconds=4000,
                                    job_ttl_seconds=10))
    message = str(caught.value)
    for part in ("max at least 1", "target_backlog must be above 0 (got 0)",
                 "job_timeout_seconds must be from 1 to 3600 (got 4000)",
                 "job_ttl_seconds must be from 60 to 21600 (got 10)", "needs job_bucket"):
        assert part in message, message
    with pytest.raises(ValueError, match="^" + re.escape(
            "ImageBucket B: job_prefix must end with '/', not start with one, and not overlap key_prefix") + "$"):
        ImageBucket(stack, "B", job_prefix="images/")


def test_settings_default_async_to_zero_instances_and_refuse_what_does_not_apply():
    model = Settings.from_values(ASYNC_SD).catalog[0]
    from deployment.hosting import hosting_of
    config = hosting_of(model)
    assert (config.min_instances, config.max_instances, config.target_backlog) == (
        0, 1, 5.0)
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"models": "gpt2-tgi,minilm-embeddings", "gpt2-tgi.job_timeout_seconds": "60",
                              "minilm-embeddings.hosting": "async", "minilm-embeddings.target_invocations": "5"})
    message = str(caught.value)
    assert "model 'gpt2-tgi': job_timeout_seconds applies to hosting=async only" in message
    assert "model 'minilm-embeddings': target_invocations applies to hosting=realtime or shared only (async scales " \
           "on target_backlog)" in message


def test_the_app_grants_each_async_lambda_its_jobs_and_routes_jobs(synth):
    template = synth(models="stable-diffusion,gpt2-cpu", **ASYNC_SD, **{"gpt2-cpu.hosting": "async"})
    resources = template["Resources"]
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"
                 and "MODEL_NAME" in json.dumps(r)}
    hosting = {f["Properties"]["Environment"]["Variables"]["MODEL_NAME"]:
               f["Properties"]["Environment"]["Variables"].get("MODEL_HOSTING") for f in functions.values()}
    assert hosting == {"stable-diffusion": "async", "gpt2-cpu": "async"}
    policies = [r["Properties"]["PolicyDocument"]["Statement"] for r in resources.values()
                if r["Type"] == "AWS::IAM::Policy"]
    flat = [s for statements in policies for s in statements]
    assert not [s for s in flat if s["Action"] == "sagemaker:InvokeEndpoint"]  # async endpoints answer only async
    assert len([s for s in flat if s["Action"] == "sagemaker:InvokeEndpointAsync"]) == 2
    listing = [s for s in flat if s["Action"] == "s3:ListBucket"]
    assert len(listing) == 2 and all(s["Condition"] == {"StringLike": {"s3:prefix": ["jobs/*"]}} for s in listing)
    paths = {r["Properties"]["PathPart"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Resource"}
    assert {"jobs", "{job_id}"} <= paths


def test_async_needs_an_endpoint_of_its_own():
    with pytest.raises(SettingsError, match="hosting=async needs an endpoint this stack creates"):
        Settings.from_values({"models": "jumpstart-stable-diffusion", "jumpstart-stable-diffusion.hosting": "async",
                              "jumpstart-stable-diffusion.source": "endpoint:js"})


def test_the_lambda_looks_for_outcomes_where_the_endpoint_config_sends_them():
    from model_api.aws import S3JobStore

    store = S3JobStore(None, "bucket")
    stack, bucket, _ = async_stack(Async("ml.g5.xlarge"))
    template = Template.from_stack(stack).to_json()
    (config,) = [r["Properties"] for r in template["Resources"].values()
                 if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    as_written = {k: "".join(p if isinstance(p, str) else "bucket" for p in v["Fn::Join"][1])
                  for k, v in output.items() if k.startswith("S3")}
    assert store.expected("0" * 32, "sd") == (f"{as_written['S3OutputPath']}/{'0' * 32}",
                                               f"{as_written['S3FailurePath']}/{'0' * 32}")
    assert store.prefix == bucket.job_prefix


def test_a_lambda_gets_exactly_its_job_files_and_a_listing_of_the_job_prefix():
    stack = Stack(App(), "T")
    bucket = ImageBucket(stack, "Jobs", job_prefix="jobs/")
    role = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    bucket.grant_job_access(role, "sd")
    template = Template.from_stack(stack).to_json()
    policy = template["Resources"][stack.get_logical_id(role.node.find_child("DefaultPolicy").node.default_child)]
    bucket_arn = {"Fn::GetAtt": [stack.get_logical_id(bucket.bucket.node.default_child), "Arn"]}

    def under(path):
        return {"Fn::Join": ["", [bucket_arn, path]]}

    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": ["s3:DeleteObject", "s3:PutObject"], "Effect": "Allow", "Resource": under("/jobs/*/input-sd.json")},
        {"Action": "s3:PutObject", "Effect": "Allow",
         "Resource": [under("/jobs/*/job.json"), under("/jobs/*/result.json")]},
        {"Action": "s3:GetObject", "Effect": "Allow", "Resource": under("/jobs/*")},
        {"Action": "s3:ListBucket", "Condition": {"StringLike": {"s3:prefix": ["jobs/*"]}}, "Effect": "Allow",
         "Resource": bucket_arn},
    ]


def test_with_a_customer_key_a_lambda_may_use_that_key_for_its_job_files():
    from aws_cdk import aws_kms as kms

    stack = Stack(App(), "T")
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    bucket = ImageBucket(stack, "Jobs", job_prefix="jobs/", encryption_key=kms.Key.from_key_arn(stack, "K", key_arn))
    role = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    bucket.grant_job_access(role, "sd")
    template = Template.from_stack(stack).to_json()
    policy = template["Resources"][stack.get_logical_id(role.node.find_child("DefaultPolicy").node.default_child)]
    # Only through S3 (kms:ViaService): a leaked session cannot use the key directly.
    assert {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": [
                {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}]}}} in \
        policy["Properties"]["PolicyDocument"]["Statement"]


def test_job_objects_expire_like_the_images():
    stack = Stack(App(), "T")
    ImageBucket(stack, "Jobs", job_prefix="jobs/", expiry_days=3)
    (bucket,) = Template.from_stack(stack).find_resources("AWS::S3::Bucket").values()
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"] == [
        {"Id": "expire-generated-images", "Prefix": "images/", "ExpirationInDays": 3, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"Id": "expire-async-jobs", "Prefix": "jobs/", "ExpirationInDays": 3, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]


def test_async_cost_is_nothing_idle_at_zero_and_the_ceiling_busy():
    from deployment.hosting import Async
    from ops import prices

    book = prices.PriceBook("us-east-1")
    price = prices.hourly("us-east-1", "ml.g5.xlarge")
    to_zero = Async("ml.g5.xlarge", 0, 3).cost(book)
    assert (to_zero.hourly_min, to_zero.hourly_max, to_zero.idle_monthly) == (0, 3 * price, 0)
    assert to_zero.note == "instances only while jobs wait or run; one runs after deploy until the first scale-in"
    floor = Async("ml.g5.xlarge", 1, 2).cost(book)
    assert (floor.hourly_min, floor.hourly_max) == (price, 2 * price)
    assert floor.idle_monthly == pytest.approx(price * 730) and floor.note == ""
    unknown = Async("ml.g6.xlarge", 0, 1).cost(book)
    assert unknown.hourly_min is None and unknown.note == "ml.g6.xlarge: not in the price table"
