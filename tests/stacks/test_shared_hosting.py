"""hosting=shared: SharedEndpoint and its components on their own (aws_cdk.assertions), the settings' fit checks, and
the whole app's grants (each Lambda its own component only)."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from deployment.container_images import ContainerImage
from deployment.hosting import Shared
from deployment.settings import Settings, SettingsError
from stacks.shared_endpoint import SharedEndpoint

IMAGE_URI = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.6.0-cpu"
SHARED = {"models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting": "shared", "minilm-embeddings.hosting": "shared",
          "minilm-embeddings.instance_type": "ml.m5.xlarge", "gpt2-cpu.max_instances": "3"}


def shared_stack():
    stack = Stack(App(), "T")
    shared = SharedEndpoint(stack, "Shared", instance_type="ml.m5.xlarge", instance_count=2, endpoint_name="pool")
    image = ContainerImage.from_uri(IMAGE_URI)
    a = shared.add_component("A", component_name="pool-a", image=image,
                             hosting=Shared("ml.m5.xlarge", memory_mb=2048, cpu_cores=1.5, min_instances=1,
                                            max_instances=4, target_invocations=20))
    b = shared.add_component("B", component_name="pool-b", image=image,
                             hosting=Shared("ml.m5.xlarge", memory_mb=1024, accelerators=None, min_instances=2,
                                            max_instances=2))
    return stack, shared, a, b


def test_the_shared_role_writes_only_its_log_groups_and_may_create_exactly_those():
    stack, shared, a, b = shared_stack()
    template = Template.from_stack(stack).to_json()
    role = stack.get_logical_id(shared.role.node.default_child)
    statements = [statement for r in template["Resources"].values()
                  if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
                  for statement in r["Properties"]["PolicyDocument"]["Statement"]]
    groups = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 3  # the endpoint's and one per component
    creatable = [s["Resource"] for s in statements if s["Action"] == "logs:CreateLogGroup"]
    # arn:<partition>:logs:<region>:<account>:log-group:<name>, the form CreateLogGroup is authorized on.
    assert creatable == [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":",
                                            {"Ref": "AWS::AccountId"}, ":log-group:", {"Ref": group}]]}
                         for group in groups]
    writable = [s["Resource"] for s in statements if "logs:PutLogEvents" in s["Action"]]
    assert writable == [{"Fn::GetAtt": [group, "Arn"]} for group in groups]


def test_the_endpoint_config_names_instances_and_role_but_no_model():
    stack, shared, _, _ = shared_stack()
    template = Template.from_stack(stack)
    config = template.find_resources("AWS::SageMaker::EndpointConfig")
    (props,) = [c["Properties"] for c in config.values()]
    assert props["ProductionVariants"] == [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge",
                                            "InitialInstanceCount": 2}]
    assert props["ExecutionRoleArn"] == {"Fn::GetAtt": [stack.get_logical_id(shared.role.node.default_child), "Arn"]}
    template.resource_count_is("AWS::SageMaker::Endpoint", 1)
    template.resource_count_is("AWS::SageMaker::Model", 2)


def test_each_component_reserves_what_one_copy_needs_and_runs_its_copies():
    stack, _, a, _ = shared_stack()
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::SageMaker::InferenceComponent", {
        "InferenceComponentName": "pool-a", "EndpointName": "pool", "VariantName": "AllTraffic",
        "RuntimeConfig": {"CopyCount": 1},
        "Specification": Match.object_like({"ComputeResourceRequirements": {
            "MinMemoryRequiredInMb": 2048, "NumberOfCpuCoresRequired": 1.5}})})
    template.has_resource_properties("AWS::SageMaker::InferenceComponent", {
        "InferenceComponentName": "pool-b", "RuntimeConfig": {"CopyCount": 2}})
    # Copies of a autoscale on invocations per copy; b has a fixed count.
    template.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {
        "MinCapacity": 1, "MaxCapacity": 4, "ResourceId": "inference-component/pool-a",
        "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount", "ServiceNamespace": "sagemaker"})
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 1)
    template.has_resource_properties("AWS::ApplicationAutoScaling::ScalingPolicy", {
        "TargetTrackingScalingPolicyConfiguration": Match.object_like({
            "TargetValue": 20, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"}})})
    assert a.metric("Invocations").dimensions == {"InferenceComponentName": "pool-a"}


def test_grant_invoke_names_the_endpoint_and_only_that_component():
    stack, _, a, _ = shared_stack()
    role = iam.Role(stack, "Caller", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    a.grant_invoke(role)
    statements = Template.from_stack(stack).to_json()["Resources"][
        stack.get_logical_id(role.node.find_child("DefaultPolicy").node.default_child)]["Properties"][
        "PolicyDocument"]["Statement"]
    (statement,) = statements
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    resources = json.dumps(statement["Resource"])
    assert ":endpoint/pool" in resources and ":inference-component/pool-a" in resources
    assert "pool-b" not in resources


def test_add_component_validates_in_one_message():
    stack, shared, _, _ = shared_stack()
    with pytest.raises(ValueError) as caught:
        shared.add_component("C", component_name="Pool_A", image=ContainerImage.from_uri(IMAGE_URI),
                             hosting=Shared("ml.m5.xlarge", memory_mb=64, cpu_cores=0.1, min_instances=2,
                                            max_instances=1),
                             model_data_url="s3://b/k.tar.gz")
    message = str(caught.value)
    for part in ("copies", "memory_mb must be at least 128", "cpu_cores must be at least 0.25",
                 "component_name 'Pool_A'", "model_data_url and model_data_arn go together"):
        assert part in message, message
    with pytest.raises(ValueError, match="^" + re.escape(
            "SharedEndpoint Shared.add_component Again: component 'pool-a' is already on this endpoint") + "$"):
        shared.add_component("Again", component_name="pool-a", image=ContainerImage.from_uri(IMAGE_URI),
                             hosting=Shared("ml.m5.xlarge"))


def test_settings_check_that_the_minimum_copies_fit_the_shared_instances():
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({**SHARED, "gpt2-cpu.min_instances": "4", "gpt2-cpu.max_instances": "4"})
    assert "the shared models' minimum copies need 5 CPU cores; 1 x ml.m5.xlarge has 4" in str(caught.value)
    assert Settings.from_values({**SHARED, "gpt2-cpu.min_instances": "4", "gpt2-cpu.max_instances": "4",
                                 "shared_instances": "2"})
    with pytest.raises(SettingsError, match="shared models must name one instance_type"):
        Settings.from_values({**SHARED, "minilm-embeddings.instance_type": "ml.m5.large"})
    with pytest.raises(SettingsError, match="one copy needs 32768 MB of memory; one ml.m5.xlarge has 16384"):
        Settings.from_values({**SHARED, "gpt2-cpu.memory_mb": "32768"})
    with pytest.raises(SettingsError, match="cpu_cores applies to hosting=shared only"):
        Settings.from_values({"cpu_cores": "2"})


def test_gpu_models_reserve_a_gpu_each_and_must_fit_the_gpus():
    values = {"models": "gpt2-tgi,chat-embeddings", "gpt2-tgi.hosting": "shared",
              "chat-embeddings.hosting": "shared"}
    with pytest.raises(SettingsError, match=r"need 2 accelerators \(GPUs\); 1 x ml.g5.xlarge has 1"):
        Settings.from_values(values)
    settings = Settings.from_values({**values, "gpt2-tgi.instance_type": "ml.g5.12xlarge",
                                     "chat-embeddings.instance_type": "ml.g5.12xlarge"})
    from deployment.hosting import hosting_of
    assert [hosting_of(m).accelerators for m in settings.catalog] == [1, 1]


def test_the_app_puts_shared_models_on_one_endpoint_and_each_lambda_on_its_component(synth):
    template = synth(**SHARED)
    resources = template["Resources"]
    assert [r["Properties"]["EndpointName"] for r in resources.values() if r["Type"] == "AWS::SageMaker::Endpoint"] \
        == ["sagemakermodelapi-shared"]
    (config,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge"  # the shared models' one type
    functions = {r["Properties"]["Environment"]["Variables"]["MODEL_NAME"]: r["Properties"]["Environment"]["Variables"]
                 for r in resources.values() if r["Type"] == "AWS::Lambda::Function"
                 and "MODEL_NAME" in json.dumps(r)}
    assert functions["gpt2-cpu"]["INFERENCE_COMPONENT"] == "sagemakermodelapi-gpt2-cpu"
    assert functions["gpt2-cpu"]["ENDPOINT_NAME"] == "sagemakermodelapi-shared"
    invokes = [s for r in resources.values() if r["Type"] == "AWS::IAM::Policy"
               for s in r["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert len(invokes) == 2
    for statement in invokes:
        named = [p for p in json.dumps(statement["Resource"]).split(":inference-component/")[1:]]
        assert len(named) == 1  # exactly one component per Lambda


def test_a_component_scales_to_zero_copies_and_a_request_that_finds_none_starts_one():
    stack = Stack(App(), "T")
    shared = SharedEndpoint(stack, "Shared", instance_type="ml.g5.xlarge", instance_count=1, max_instance_count=2,
                            scale_to_zero=True, endpoint_name="pool")
    idle = shared.add_component("Idle", component_name="pool-idle", image=ContainerImage.from_uri(IMAGE_URI),
                                hosting=Shared("ml.g5.xlarge", min_instances=0, max_instances=2,
                                               scale_out_cooldown_seconds=120))
    template = Template.from_stack(stack)
    (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    assert config["Properties"]["ProductionVariants"][0]["ManagedInstanceScaling"] == {
        "Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 2}
    # Created with one copy (SageMaker refuses 0), then free to scale in to none.
    template.has_resource_properties("AWS::SageMaker::InferenceComponent", {
        "InferenceComponentName": "pool-idle", "RuntimeConfig": {"CopyCount": 1},
        "Specification": Match.object_like({"ComputeResourceRequirements": {
            "MinMemoryRequiredInMb": 1024, "NumberOfCpuCoresRequired": 1}})})
    template.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {
        "MinCapacity": 0, "MaxCapacity": 2, "ResourceId": "inference-component/pool-idle"})
    policies = template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    (step_id,) = [k for k, v in policies.items() if v["Properties"]["PolicyType"] == "StepScaling"]
    assert policies[step_id]["Properties"]["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity", "Cooldown": 120, "MetricAggregationType": "Maximum",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}
    (alarm,) = template.find_resources("AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"] == {
        "AlarmDescription": "A request found no copy of pool-idle: start one", "Namespace": "AWS/SageMaker",
        "MetricName": "NoCapacityInvocationFailures",
        "Dimensions": [{"Name": "InferenceComponentName", "Value": "pool-idle"}], "Statistic": "Sum",
        "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": step_id}]}
    assert idle.start_alarm is not None


def test_zero_copies_need_an_endpoint_that_scales_to_zero_and_fixed_fleets_have_no_managed_scaling():
    stack = Stack(App(), "T")
    fixed = SharedEndpoint(stack, "Shared", instance_type="ml.m5.xlarge", endpoint_name="pool")
    with pytest.raises(ValueError, match="^" + re.escape(
            "ModelComponent A: min_copies 0 needs the SharedEndpoint made with scale_to_zero=True (instances "
            "cannot otherwise scale in to zero)") + "$"):
        fixed.add_component("A", component_name="pool-a", image=ContainerImage.from_uri(IMAGE_URI),
                            hosting=Shared("ml.m5.xlarge", min_instances=0, max_instances=1))
    grows = SharedEndpoint(Stack(App(), "U"), "Shared", instance_type="ml.m5.xlarge", instance_count=1,
                           max_instance_count=3, endpoint_name="grows")
    (config,) = Template.from_stack(Stack.of(grows)).find_resources("AWS::SageMaker::EndpointConfig").values()
    assert config["Properties"]["ProductionVariants"][0]["ManagedInstanceScaling"] == {
        "Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 3}
    with pytest.raises(ValueError, match="^" + re.escape(
            "SharedEndpoint Shared: need 1 <= instance_count <= max_instance_count <= 100 (got 2 and 1)") + "$"):
        SharedEndpoint(Stack(App(), "V"), "Shared", instance_type="ml.m5.xlarge", instance_count=2,
                       max_instance_count=1)


def test_settings_scale_shared_models_to_zero_and_bound_the_fleet(synth):
    values = {**SHARED, "gpt2-cpu.min_instances": "0", "minilm-embeddings.min_instances": "0",
              "minilm-embeddings.max_instances": "2", "shared_max_instances": "2"}
    fleet = Settings.from_values(values).shared_fleet
    assert (fleet.initial, fleet.minimum, fleet.maximum, fleet.idle_instances()) == (1, 0, 2, 0)
    partly = Settings.from_values({**SHARED, "gpt2-cpu.min_instances": "0"}).shared_fleet
    assert (partly.to_zero, partly.all_to_zero, partly.idle_instances(), partly.managed) == (True, False, 1, True)
    assert not Settings.from_values(SHARED).shared_fleet.managed
    with pytest.raises(SettingsError, match=r"1 <= shared_instances <= shared_max_instances <= 100 \(got 2 and 1\)"):
        Settings.from_values({**SHARED, "shared_instances": "2", "shared_max_instances": "1"})
    with pytest.raises(SettingsError, match=r"copies \(min_instances, max_instances\) must satisfy 0 <= min <= max"):
        Settings.from_values({**SHARED, "gpt2-cpu.min_instances": "0", "gpt2-cpu.max_instances": "0"})
    template = synth(**values)
    alarms = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"].get("MetricName") == "NoCapacityInvocationFailures"]
    assert sorted(a["Properties"]["Dimensions"][0]["Value"] for a in alarms) == [
        "sagemakermodelapi-gpt2-cpu", "sagemakermodelapi-minilm-embeddings"]


def test_memory_per_copy_defaults_to_what_a_small_gpu_instance_schedules_and_applies_only_where_it_means_something():
    settings = Settings.from_values({"models": "gpt2-tgi,minilm-embeddings", "gpt2-tgi.hosting": "shared",
                                     "minilm-embeddings.hosting": "shared",
                                     "minilm-embeddings.instance_type": "ml.g5.xlarge",
                                     "minilm-embeddings.accelerators": "1", "shared_instances": "2"})
    from deployment.hosting import hosting_of
    assert [hosting_of(m).memory_mb for m in settings.catalog] == [1024, 1024]
    assert hosting_of(Settings.from_values({"models": "minilm-embeddings", "hosting": "serverless"}).catalog[0]
                      ).memory_mb == 4096
    with pytest.raises(SettingsError, match=r"memory_mb applies to hosting=serverless or shared only \(an "
                                            r"instance's memory is its type's\)"):
        Settings.from_values({"models": "gpt2-cpu", "memory_mb": "2048"})


def test_the_endpoint_runs_as_a_sagemaker_role_and_each_model_runs_its_own_image_and_environment():
    stack = Stack(App(), "T")
    shared = SharedEndpoint(stack, "Shared", instance_type="ml.m5.xlarge", endpoint_name="pool")
    a = shared.add_component("A", component_name="pool-a", image=ContainerImage.from_uri(IMAGE_URI),
                             hosting=Shared("ml.m5.xlarge"), environment={"HF_TASK": "text-generation"},
                             model_data_url="s3://b/a.tar.gz", model_data_arn="arn:aws:s3:::b/a.tar.gz")
    assert shared.components == {"pool-a": a}
    template = Template.from_stack(stack).to_json()
    role = template["Resources"][stack.get_logical_id(shared.role.node.default_child)]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]
    model = template["Resources"][stack.get_logical_id(a.model)]["Properties"]
    assert model["PrimaryContainer"] == {"Image": IMAGE_URI, "ModelDataUrl": "s3://b/a.tar.gz",
                                         "Environment": {"HF_TASK": "text-generation"}}
    # A component's container runs as the endpoint's role (the one with its image, artifact and log grants).
    assert model["ExecutionRoleArn"] == {"Fn::GetAtt": [stack.get_logical_id(shared.role.node.default_child), "Arn"]}
    # Pinned: a renamed construct would replace the endpoint (and its instances) on the next deploy.
    assert stack.get_logical_id(shared.endpoint).startswith("SharedEndpoint")


def test_shared_copies_scale_on_their_kinds_target_and_the_cost_table_counts_copies():
    settings = Settings.from_values(SHARED)
    from deployment.hosting import hosting_of
    configs = [hosting_of(m) for m in settings.catalog]
    assert [c.target_invocations for c in configs] == [30.0, 300.0]  # text generation, embeddings
    assert [c.count_label() for c in configs] == ["1-3 copies", "1 copy"]
    fixed = Settings.from_values({**SHARED, "minilm-embeddings.min_instances": "2",
                                  "minilm-embeddings.max_instances": "2"}).catalog[1]
    assert hosting_of(fixed).count_label() == "2 copies"


def test_shared_copies_take_the_models_cooldowns_and_a_bad_endpoint_name_is_named():
    model = Settings.from_values({**SHARED, "gpt2-cpu.scale_in_cooldown_seconds": "120",
                                  "gpt2-cpu.scale_out_cooldown_seconds": "30"}).catalog[0]
    from deployment.hosting import hosting_of
    assert (hosting_of(model).scale_in_cooldown_seconds, hosting_of(model).scale_out_cooldown_seconds) == (120, 30)
    with pytest.raises(ValueError, match="^" + re.escape(
            "SharedEndpoint Shared: endpoint_name 'Pool_1' must be lowercase letters, digits and hyphens") + "$"):
        SharedEndpoint(Stack(App(), "T"), "Shared", instance_type="ml.m5.xlarge", endpoint_name="Pool_1")


def test_only_a_component_that_scales_to_zero_has_a_start_alarm():
    _, _, a, b = shared_stack()  # one copy or more, always
    assert a.start_alarm is None and b.start_alarm is None and a.scalable_target is not None
