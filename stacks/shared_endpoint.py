"""One SageMaker endpoint whose instances several models share, each as an inference component (hosting=shared).

The endpoint config names no model: it gives the instances (type, count) and the execution role; each model is a
SageMaker model plus an inference component that reserves memory, CPU cores and accelerators per copy and runs
`copies` of it (SageMaker Developer Guide, "Deploy models with inference components"). Invocations name the
component (InvokeEndpoint InferenceComponentName), and a grantee may invoke only the components it is granted.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from deployment.container_images import ContainerImage
from deployment.hosting import MAX_INSTANCES, Shared
from stacks.model_endpoint import (
    ENDPOINT_NAME,
    VARIANT_NAME,
    container_model,
    metrics_statement,
    volume_key_statements,
)
from stacks.private_network import Placement, sagemaker_network_statements

COMPONENT_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")


class SharedEndpoint(Construct):
    """The shared endpoint: instances, execution role, log groups; models join it with add_component().

    Props:
      instance_type: the instances every component runs on (e.g. ml.g5.12xlarge for several GPU models).
      instance_count: instances of the endpoint to start with (default 1).
      max_instance_count: with managed instance scaling, at most this many as the copies need room (default:
        instance_count, no managed scaling unless scale_to_zero).
      scale_to_zero: instances may scale in to 0 once every copy has (a component with min_copies 0);
        ManagedInstanceScaling MinInstanceCount 0. Some regions refuse it (reported for eu-west-3: "Min instance
        count needs to be greater than 0 for enabled managed instance scaling"); the deploy then fails there.
      endpoint_name: lowercase; default a name made from the construct's path.
      volume_kms_key_arn: KMS key for the instances' ML storage volume; None on NVMe instance types.
      log_retention: retention of the log groups (default one month).
      placement: subnets and security groups of a VPC (stacks.private_network) for every component's container;
        the role then gains the network-interface actions. Default None: SageMaker's own network.
      network_isolation: every component's container gets no network at all (weights from model_data_url only).

    VPC and isolation are the endpoint's: on an endpoint of inference components CreateEndpointConfig's VpcConfig
    and EnableNetworkIsolation apply to every container deployed to it (botocore's SageMaker model:
    EnableNetworkIsolation "Sets whether all model containers deployed to the endpoint are isolated"; both are
    accepted only for endpoints of inference components: hashicorp/terraform-provider-aws#48738 and #48884,
    aws-samples/amazon-nova-samples#266). Each component's model carries the same settings, so the model is
    consistent with the endpoint whichever SageMaker reads.

    Attributes: role, log_group, endpoint_config, endpoint, endpoint_name, endpoint_arn, components (by name),
    min_instance_count and max_instance_count (the instances it keeps at least and at most).
    """

    def __init__(self, scope: Construct, construct_id: str, *, instance_type: str, instance_count: int = 1,
                 max_instance_count: Optional[int] = None, scale_to_zero: bool = False,
                 endpoint_name: Optional[str] = None, volume_kms_key_arn: Optional[str] = None,
                 log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
                 placement: Optional[Placement] = None, network_isolation: bool = False):
        super().__init__(scope, construct_id)
        endpoint_name = endpoint_name or Stack.of(self).node.id.lower() + "-shared"
        problems = []
        if not ENDPOINT_NAME.match(endpoint_name):
            problems.append(f"endpoint_name {endpoint_name!r} must be lowercase letters, digits and hyphens")
        max_instance_count = instance_count if max_instance_count is None else max_instance_count
        if not 1 <= instance_count <= max_instance_count <= MAX_INSTANCES:
            problems.append(f"need 1 <= instance_count <= max_instance_count <= {MAX_INSTANCES} (got "
                            f"{instance_count} and {max_instance_count})")
        if problems:
            raise ValueError(f"SharedEndpoint {construct_id}: " + "; ".join(problems))
        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)
        self.components: dict[str, "ModelComponent"] = {}
        self.placement, self.network_isolation = placement, network_isolation
        self.scale_to_zero = scale_to_zero
        # The instances managed scaling keeps at least and at most (both instance_count without it).
        self.min_instance_count = 0 if scale_to_zero else instance_count
        self.max_instance_count = max_instance_count
        self._log_retention = log_retention
        self.log_group = logs.LogGroup(self, "Logs", log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
                                       retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Execution role of shared SageMaker endpoint {endpoint_name} and its components",
            inline_policies={"ServeModels": iam.PolicyDocument(statements=[
                # ecr:GetAuthorizationToken takes no resource: AWS allows only "*" for it.
                iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
                metrics_statement(),
            ])},
        )
        self._grant_logs(self.log_group)
        if placement is not None:
            for statement in sagemaker_network_statements(placement.vpc_id):
                self.role.add_to_principal_policy(statement)
        if volume_kms_key_arn is not None:
            for statement in volume_key_statements(volume_kms_key_arn, stack.region):
                self.role.add_to_principal_policy(statement)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "Config",
            execution_role_arn=self.role.role_arn,  # inference components run as the endpoint's role
            kms_key_id=volume_kms_key_arn,
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME, instance_type=instance_type, initial_instance_count=instance_count,
                managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                    status="ENABLED", min_instance_count=0 if scale_to_zero else instance_count,
                    max_instance_count=max_instance_count)
                if scale_to_zero or max_instance_count > instance_count else None)],
            vpc_config=None if placement is None else sagemaker.CfnEndpointConfig.VpcConfigProperty(
                subnets=list(placement.subnet_ids), security_group_ids=list(placement.security_group_ids)),
            enable_network_isolation=True if network_isolation else None,
        )
        self.endpoint_config.node.add_dependency(self.role)
        self.endpoint = sagemaker.CfnEndpoint(self, "Endpoint", endpoint_name=endpoint_name,
                                              endpoint_config_name=self.endpoint_config.attr_endpoint_config_name)
        self.endpoint.node.add_dependency(self.log_group)

    def _grant_logs(self, group: logs.LogGroup) -> None:
        stack = Stack.of(self)
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=[group.log_group_arn]))
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup"],
            resources=[stack.format_arn(service="logs", resource="log-group", resource_name=group.log_group_name,
                                        arn_format=ArnFormat.COLON_RESOURCE_NAME)]))

    def add_component(self, construct_id: str, *, component_name: str, image: ContainerImage, hosting: Shared,
                      environment: Optional[Mapping[str, str]] = None, model_data_url: Optional[str] = None,
                      model_data_arn: Optional[str] = None, readable_secret_arn: Optional[str] = None
                      ) -> "ModelComponent":
        """One model on this endpoint: its SageMaker model and inference component (hosting: what a copy
        reserves and how many copies run), in the endpoint's VPC and isolation. The role gains pull rights on its
        image and read on its artifact."""
        problems = list(hosting.problems())
        if not COMPONENT_NAME.match(component_name):
            problems.append(f"component_name {component_name!r} must be lowercase letters, digits and hyphens")
        if component_name in self.components:
            problems.append(f"component {component_name!r} is already on this endpoint")
        if (model_data_url is None) != (model_data_arn is None):
            problems.append("model_data_url and model_data_arn go together")
        if problems:
            raise ValueError(f"SharedEndpoint {self.node.id}.add_component {construct_id}: " + "; ".join(problems))
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=[image.repository_arn]))
        if model_data_arn is not None:
            self.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"],
                                                                  resources=[model_data_arn]))
        if readable_secret_arn is not None:
            self.role.add_to_principal_policy(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"],
                                                                  resources=[readable_secret_arn]))
        component = ModelComponent(self, construct_id, component_name=component_name, image=image, hosting=hosting,
                                   environment=environment, model_data_url=model_data_url)
        self.components[component_name] = component
        return component


class ModelComponent(Construct):
    """A model and its inference component on a SharedEndpoint (made by SharedEndpoint.add_component).

    Attributes: model, inference_component, component_name, component_arn, hosting, log_group, scalable_target,
    start_alarm (the NoCapacityInvocationFailures alarm that starts a copy from zero; None unless min copies is 0).
    Methods: grant_invoke, autoscale_copies, metric.
    """

    def __init__(self, scope: SharedEndpoint, construct_id: str, *, component_name: str, image: ContainerImage,
                 hosting: Shared, environment: Optional[Mapping[str, str]], model_data_url: Optional[str]):
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.shared = scope
        self.hosting = hosting
        self.component_name = component_name
        self.component_arn = stack.format_arn(service="sagemaker", resource="inference-component",
                                              resource_name=component_name)
        self.scalable_target: Optional[appscaling.CfnScalableTarget] = None
        self.start_alarm: Optional[cloudwatch.CfnAlarm] = None
        # A component's container logs to /aws/sagemaker/InferenceComponents/<component> (third-party deployment
        # notes, 2026, read it there for crash loops; not verified against AWS docs here): the group exists with a
        # retention, goes with the stack, and the role may write to it as well as to the endpoint's.
        self.log_group = logs.LogGroup(self, "Logs", log_group_name=f"/aws/sagemaker/InferenceComponents/"
                                       f"{component_name}", retention=scope._log_retention,
                                       removal_policy=RemovalPolicy.DESTROY)
        scope._grant_logs(self.log_group)
        self.model = container_model(self, role_arn=scope.role.role_arn, image=image, environment=environment,
                                     model_data_url=model_data_url, placement=scope.placement,
                                     network_isolation=scope.network_isolation)
        self.model.node.add_dependency(scope.role)  # its policy (image pull, artifact read) before the model
        self.inference_component = sagemaker.CfnInferenceComponent(
            self, "Component",
            inference_component_name=component_name,
            endpoint_name=scope.endpoint_name,
            variant_name=VARIANT_NAME,
            specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                model_name=self.model.attr_model_name,
                compute_resource_requirements=sagemaker.CfnInferenceComponent
                .InferenceComponentComputeResourceRequirementsProperty(**hosting.requirements()),
                startup_parameters=sagemaker.CfnInferenceComponent.InferenceComponentStartupParametersProperty(
                    container_startup_health_check_timeout_in_seconds=hosting.startup_timeout_seconds),
            ),
            # Created with at least one copy (SageMaker refuses 0); autoscaling takes it to zero when idle.
            runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                copy_count=hosting.initial_copies),
        )
        self.inference_component.node.add_dependency(scope.endpoint)
        self.inference_component.node.add_dependency(self.log_group)
        if hosting.autoscaled:
            self.autoscale_copies(hosting.min_instances, hosting.max_instances, hosting.target_invocations,
                                  scale_in_cooldown_seconds=hosting.scale_in_cooldown_seconds,
                                  scale_out_cooldown_seconds=hosting.scale_out_cooldown_seconds)

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """sagemaker:InvokeEndpoint on the shared endpoint for this component only: the statement names the
        endpoint and this component's ARN, so invoking another component on the endpoint is denied (InvokeEndpoint
        authorizes an inference-component resource besides the endpoint; as public least-privilege policies do;
        unverified here against a live account)."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=["sagemaker:InvokeEndpoint"],
                                          resource_arns=[self.shared.endpoint_arn, self.component_arn])

    def autoscale_copies(self, min_copies: int, max_copies: int, target_invocations: float, *,
                         scale_in_cooldown_seconds: int = 900, scale_out_cooldown_seconds: int = 300
                         ) -> appscaling.CfnScalableTarget:
        """Target tracking of invocations per copy (SageMakerInferenceComponentInvocationsPerCopy) between
        min_copies and max_copies, by the service-linked role. Instances grow with the copies only under managed
        instance scaling (SharedEndpoint max_instance_count); otherwise copies wait for room.

        min_copies 0 (the endpoint made with scale_to_zero): target tracking scales in to zero copies when idle, and
        cannot scale out of zero (no copy to divide by), so a request that finds no copy (InvokeEndpoint answers 400
        "no capacity", and SageMaker counts NoCapacityInvocationFailures) raises the StartFromZero alarm, whose step
        policy adds one copy; the instance and the model then start (minutes)."""
        if self.scalable_target is not None:
            raise ValueError(f"ModelComponent {self.node.id}: autoscaling is already set")
        if not (0 <= min_copies <= max_copies and max_copies >= 1):
            raise ValueError(f"ModelComponent {self.node.id}: need 0 <= min_copies <= max_copies, max_copies >= 1")
        if min_copies == 0 and not self.shared.scale_to_zero:
            raise ValueError(f"ModelComponent {self.node.id}: min_copies 0 needs the SharedEndpoint made with "
                             "scale_to_zero=True (instances cannot otherwise scale in to zero)")
        self.scalable_target = appscaling.CfnScalableTarget(
            self, "ScalableTarget", service_namespace="sagemaker",
            resource_id=f"inference-component/{self.component_name}",
            scalable_dimension="sagemaker:inference-component:DesiredCopyCount",
            min_capacity=min_copies, max_capacity=max_copies)
        self.scalable_target.node.add_dependency(self.inference_component)
        appscaling.CfnScalingPolicy(
            self, "InvocationsPerCopy",
            policy_name=f"{self.component_name}-invocations-per-copy",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.scalable_target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy
            .TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(target_invocations),
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerInferenceComponentInvocationsPerCopy"),
                scale_in_cooldown=scale_in_cooldown_seconds,
                scale_out_cooldown=scale_out_cooldown_seconds,
            ),
        )
        if min_copies == 0:
            self._start_from_zero(scale_out_cooldown_seconds)
        return self.scalable_target

    def _start_from_zero(self, cooldown_seconds: int) -> None:
        """One copy more whenever a request found none (SageMaker Developer Guide, "Scale an endpoint to zero
        instances": a step scaling policy on an alarm of NoCapacityInvocationFailures, one 60 s period, >= 1)."""
        start = appscaling.CfnScalingPolicy(
            self, "StartFromZero",
            policy_name=f"{self.component_name}-start-from-zero",
            policy_type="StepScaling",
            scaling_target_id=self.scalable_target.ref,
            step_scaling_policy_configuration=appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
                adjustment_type="ChangeInCapacity", cooldown=cooldown_seconds, metric_aggregation_type="Maximum",
                step_adjustments=[appscaling.CfnScalingPolicy.StepAdjustmentProperty(
                    metric_interval_lower_bound=0, scaling_adjustment=1)]),
        )
        self.start_alarm = cloudwatch.CfnAlarm(
            self, "NoCapacity",
            alarm_description=f"A request found no copy of {self.component_name}: start one",
            namespace="AWS/SageMaker", metric_name="NoCapacityInvocationFailures",
            dimensions=[cloudwatch.CfnAlarm.DimensionProperty(name="InferenceComponentName",
                                                              value=self.component_name)],
            statistic="Sum", period=60, evaluation_periods=1, datapoints_to_alarm=1, threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold", treat_missing_data="notBreaching",
            alarm_actions=[start.ref],
        )

    def metric(self, metric_name: str, *, statistic: str = "Sum", period: Duration = Duration.minutes(1)
               ) -> cloudwatch.Metric:
        """A CloudWatch metric of this component (AWS/SageMaker: Invocations, ModelLatency, ...)."""
        return cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=metric_name, statistic=statistic,
                                 period=period, dimensions_map={"InferenceComponentName": self.component_name})
