"""Hosting modes: ModelEndpoint on its own (aws_cdk.assertions), the settings' checks, and the whole app."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from deployment.container_images import ContainerImage
from deployment.hosting import Realtime, Serverless, hosting_of, serverless_memory_needed_mb
from deployment.settings import Settings, SettingsError
from stacks.model_endpoint import ModelEndpoint

IMAGE_URI = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.6.0-cpu"


def endpoint_stack(**props):
    stack = Stack(App(), "T")
    endpoint = ModelEndpoint(stack, "Model", image=ContainerImage.from_uri(IMAGE_URI), **props)
    return stack, endpoint


def test_realtime_without_a_range_has_no_scaling_and_resets_nothing():
    stack, endpoint = endpoint_stack(endpoint_name="plain", hosting=Realtime("ml.m5.large", 2, 2))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    template.has_resource_properties("AWS::SageMaker::EndpointConfig", {"ProductionVariants": [Match.object_like(
        {"InstanceType": "ml.m5.large", "InitialInstanceCount": 2})]})
    assert "RetainAllVariantProperties" not in template.find_resources("AWS::SageMaker::Endpoint")[
        stack.get_logical_id(endpoint.endpoint)]["Properties"]
    assert endpoint.scalable_target is None


def test_autoscaled_realtime_tracks_invocations_per_instance_with_the_service_linked_role():
    stack, endpoint = endpoint_stack(endpoint_name="busy", hosting=Realtime(
        "ml.g5.xlarge", 1, 4, target_invocations=12.5, scale_in_cooldown_seconds=600, scale_out_cooldown_seconds=120))
    template = Template.from_stack(stack)
    targets = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    (target_id, target), = targets.items()
    assert target["Properties"] == {
        "MinCapacity": 1, "MaxCapacity": 4, "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/busy/variant/AllTraffic", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    # No RoleARN: Application Auto Scaling uses its service-linked role; no role of the stack gains scaling rights.
    assert target["DependsOn"] == [stack.get_logical_id(endpoint.endpoint)]
    template.resource_count_is("AWS::IAM::Role", 1)  # the execution role only
    # Stable ids: a renamed policy would be replaced (deleted and made again) on the next deploy.
    assert endpoint.node.find_child("InvocationsPerInstance") and endpoint.node.find_child("ScalableTarget")
    template.has_resource_properties("AWS::ApplicationAutoScaling::ScalingPolicy", {
        "PolicyType": "TargetTrackingScaling", "ScalingTargetId": {"Ref": target_id},
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 12.5, "ScaleInCooldown": 600, "ScaleOutCooldown": 120,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}})
    # A deploy with new code keeps the count autoscaling reached instead of dropping to the minimum.
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"RetainAllVariantProperties": True})


def test_serverless_has_memory_and_concurrency_and_no_instances_or_volume():
    stack, endpoint = endpoint_stack(endpoint_name="idle", hosting=Serverless(2048, 10, 2))
    template = Template.from_stack(stack)
    (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    variant = config["Properties"]["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 10, "ProvisionedConcurrency": 2}
    assert not {"InstanceType", "InitialInstanceCount", "VolumeSizeInGB",
                "ContainerStartupHealthCheckTimeoutInSeconds"} & set(variant)
    assert "KmsKeyId" not in config["Properties"]
    with pytest.raises(ValueError, match="^" + re.escape(
            "ModelEndpoint Model: only instance (realtime) hosting autoscales on invocations") + "$"):
        endpoint.autoscale(1, 2, 10)


def test_construct_validates_its_props_in_one_message():
    with pytest.raises(ValueError) as error:
        endpoint_stack(endpoint_name="Bad_Name", hosting=Serverless(3000, 0),
                       volume_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/x")
    message = str(error.value)
    for part in ("memory_mb must be one of", "max_concurrency must be from 1", "endpoint_name 'Bad_Name'",
                 "volume_kms_key_arn does not apply to serverless"):
        assert part in message


def test_default_name_is_lowercase_from_the_path_and_grant_and_metrics_use_it():
    stack, endpoint = endpoint_stack()
    assert endpoint.endpoint_name == endpoint.endpoint_name.lower() and "model" in endpoint.endpoint_name
    assert endpoint.endpoint_name.startswith("t-model-")  # the path's parts joined by hyphens: stack, construct
    role = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    endpoint.grant_invoke(role)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": [{
        "Action": "sagemaker:InvokeEndpoint", "Effect": "Allow",
        "Resource": {"Fn::Join": ["", Match.array_with([f":endpoint/{endpoint.endpoint_name}"])]}}]}})
    latency = endpoint.metric_model_latency()
    assert (latency.metric_name, latency.statistic, latency.namespace) == ("ModelLatency", "p90", "AWS/SageMaker")
    assert latency.dimensions == {"EndpointName": endpoint.endpoint_name, "VariantName": "AllTraffic"}
    assert endpoint.metric_invocation_5xx_errors().metric_name == "Invocation5XXErrors"
    errors = endpoint.metric_invocation_5xx_errors(period=Duration.minutes(5), statistic="Maximum")
    assert (errors.period.to_minutes(), errors.statistic) == (5, "Maximum")
    assert endpoint.metric_invocation_4xx_errors(period=Duration.minutes(5)).period.to_minutes() == 5
    assert endpoint.metric_invocation_4xx_errors().metric_name == "Invocation4XXErrors"
    invocations = endpoint.metric_invocations()
    assert (invocations.metric_name, invocations.statistic, invocations.namespace, invocations.period.to_minutes()) \
        == ("Invocations", "Sum", "AWS/SageMaker", 1)
    assert invocations.dimensions == latency.dimensions


def test_autoscale_twice_is_refused():
    _, endpoint = endpoint_stack(endpoint_name="twice", hosting=Realtime("ml.m5.large", 1, 2))
    with pytest.raises(ValueError, match="^" + re.escape("ModelEndpoint Model: autoscaling is already set") + "$"):
        endpoint.autoscale(1, 3, 10)


# ------------------------------------------------------------------------------------------------ settings


def problems(**values) -> str:
    with pytest.raises(SettingsError) as error:
        Settings.from_values(values)
    return str(error.value)


def test_realtime_range_checks():
    message = problems(**{"min_instances": "0", "max_instances": "101", "target_invocations": "0",
                          "scale_in_cooldown_seconds": "-1", "scale_out_cooldown_seconds": "3601"})
    for part in ("min_instances must be at least 1", "max_instances must be from min_instances (0) to 100",
                 "target_invocations must be above 0", "scale_in_cooldown_seconds must be from 0 to 3600",
                 "scale_out_cooldown_seconds must be from 0 to 3600"):
        assert part in message
    assert "max_instances must be from min_instances (3)" in problems(min_instances="3", max_instances="2")
    # A fraction of an invocation per minute is a target (a slow model, a cautious scale-out): allowed.
    assert Settings.from_values({"target_invocations": "0.5", "max_instances": "2"}).catalog[0].target_invocations \
        == 0.5


def test_serverless_refuses_gpu_containers_oversized_models_and_instance_fields():
    message = problems(**{"models": "gpt2-tgi,stable-diffusion", "gpt2-tgi.hosting": "serverless",
                          "stable-diffusion.hosting": "serverless", "stable-diffusion.max_instances": "2",
                          "stable-diffusion.volume_size_gb": "10"})
    assert "model 'gpt2-tgi': container tgi needs a GPU; serverless hosting has none" in message
    assert "model 'stable-diffusion': about 5.2 GB of weights need ~8.8 GB of memory; serverless hosting offers " \
           "at most 6 GB" in message
    assert "max_instances applies to hosting=realtime or async or shared only (serverless scales on its own up to " \
           "max_concurrency)" in message
    assert "volume_size_gb applies to hosting=realtime or async only (SageMaker manages a serverless endpoint's " \
           "storage)" in message
    # 12.5 GB * 1.5 + 1 GB of runtime = 19.75 GB: the message converts MB to GB by 1024.
    message = problems(**{"models": "x", "x.hosting": "serverless", "model_specs": json.dumps(
        {"x": {"kind": "embeddings", "source": "hub:a/b", "task": "feature-extraction", "weights_gb": 12.5}})})
    assert "model 'x': about 12.5 GB of weights need ~19.8 GB of memory; serverless hosting offers at most 6 GB" \
        in message
    message = problems(**{"models": "gpt2-cpu", "gpt2-cpu.hosting": "serverless",
                          "gpt2-cpu.container": "hf-inference-gpu"})
    assert "model 'gpt2-cpu': container hf-inference-gpu needs a GPU; serverless hosting has none" in message


def test_serverless_bounds_and_memory_for_the_weights():
    message = problems(**{"models": "chat-embeddings", "hosting": "serverless", "memory_mb": "2048",
                          "max_concurrency": "201", "provisioned_concurrency": "202"})
    assert "max_concurrency must be from 1 to 200 (got 201)" in message
    assert "provisioned_concurrency must be from 1 to max_concurrency (201) (got 202)" in message
    assert "about 2 GB of weights need ~4.0 GB of memory; memory_mb is 2048: raise it" in message
    assert serverless_memory_needed_mb(2.0) == 4096
    # The bounds themselves are allowed.
    for memory, concurrency in ((1024, 1), (6144, 200)):
        assert Serverless(memory, concurrency, concurrency).problems() == []
    assert "provisioned_concurrency applies to hosting=serverless only" in problems(provisioned_concurrency="1")
    assert "hosting 'spot' must be one of realtime, serverless" in problems(hosting="spot")


def test_defaults_keep_one_instance_and_the_old_instance_count_name_still_works():
    model = Settings.from_values({}).catalog[0]
    assert (model.hosting, model.min_instances, model.max_instances) == ("realtime", None, None)
    from deployment.hosting import hosting_of
    assert (hosting_of(model).min_instances, hosting_of(model).max_instances) == (1, 1)
    assert Settings.from_values({"instance_count": "2"}).catalog[0].min_instances == 2
    assert Settings.from_values({"stable-diffusion.instance_count": "3"}).catalog[0].min_instances == 3
    specs = '{"mine": {"kind": "embeddings", "source": "hub:a/b", "task": "feature-extraction", "instance_count": 2}}'
    assert Settings.from_values({"models": "mine", "model_specs": specs}).catalog[0].min_instances == 2


def test_serverless_cpu_model_synthesizes_on_the_cpu_image(synth):
    template = synth(models="gpt2-cpu", **{"gpt2-cpu.hosting": "serverless", "gpt2-cpu.instance_type": "ml.g5.xlarge"})
    (model,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    image = model["Properties"]["PrimaryContainer"]["Image"]
    assert "cpu-py" in str(image) and "gpu" not in str(image)


def test_serverless_endpoints_take_no_volume_key_which_serverless_has_no_volume_for(synth):
    key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    template = synth(models="gpt2-cpu", kms_key_arn=key, **{"gpt2-cpu.hosting": "serverless"})
    (config,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert "KmsKeyId" not in config["Properties"]
    realtime = synth(models="gpt2-cpu", kms_key_arn=key)
    (config,) = [r for r in realtime["Resources"].values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert config["Properties"]["KmsKeyId"] == key


def test_each_kind_brings_its_scaling_targets():
    settings = Settings.from_values({"models": "stable-diffusion,gpt2-cpu,minilm-embeddings,chat-embeddings"})
    assert [hosting_of(m).target_invocations for m in settings.catalog] == [10.0, 30.0, 300.0, 30.0]
    hosted = Settings.from_values({"models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting": "async",
                                   "minilm-embeddings.hosting": "async"})
    assert [hosting_of(m).target_backlog for m in hosted.catalog] == [20.0, 100.0]


def test_the_endpoints_logical_id_is_pinned():
    # A renamed construct would replace the endpoint (and its instances) on the next deploy.
    stack, endpoint = endpoint_stack(endpoint_name="pinned", hosting=Realtime("ml.m5.large", 1, 1))
    assert stack.get_logical_id(endpoint.endpoint).startswith("ModelEndpoint")


def test_cooldowns_are_checked_in_every_mode_with_their_name():
    bad = {"scale_in_cooldown_seconds": "5000", "scale_out_cooldown_seconds": "-1"}
    for hosting in ("realtime", "async"):
        with pytest.raises(SettingsError) as caught:
            Settings.from_values({"models": "gpt2-cpu", "gpt2-cpu.hosting": hosting, "gpt2-cpu.max_instances": "2",
                                  **{f"gpt2-cpu.{k}": v for k, v in bad.items()}})
        assert "scale_in_cooldown_seconds must be from 0 to 3600 (got 5000)" in str(caught.value), hosting
        assert "scale_out_cooldown_seconds must be from 0 to 3600 (got -1)" in str(caught.value), hosting
    assert Settings.from_values({"models": "gpt2-cpu", "gpt2-cpu.max_instances": "2",
                                 "gpt2-cpu.scale_in_cooldown_seconds": "0",
                                 "gpt2-cpu.scale_out_cooldown_seconds": "3600"})
