"""A SageMaker endpoint for one model: execution role, log group, model, endpoint config, endpoint, and (on
instances) autoscaling. How it is hosted is a deployment.hosting config (Realtime, Serverless, Async, or any mode
registered in HOSTING_MODES): the construct asks the mode, never its type: its production variant (variant()),
whether it takes jobs from the bucket (takes_jobs), the action that invokes it (invoke_action), and its scaling
(scale(endpoint), which calls autoscale or autoscale_on_backlog here)."""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from aws_cdk import ArnFormat, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from deployment.container_images import ContainerImage
from deployment.hosting import Realtime
from stacks.image_bucket import ImageBucket
from stacks.private_network import Placement, sagemaker_network_statements

ENDPOINT_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
# The namespace SageMaker hosting publishes endpoint metrics under; the role may write no other.
METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


VARIANT_NAME = "AllTraffic"


def _variant_properties(hosting) -> dict:
    """The hosting config's production variant fields, nested configs as their CDK property classes."""
    fields = dict(hosting.variant())
    if "serverless_config" in fields:
        fields["serverless_config"] = sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
            **fields["serverless_config"])
    return fields



def image_statements(image: ContainerImage) -> list[iam.PolicyStatement]:
    """Pulling a model's container image: what any SageMaker role running it needs (endpoint or batch job)."""
    return [
        iam.PolicyStatement(
            sid="PullModelImage",
            actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=[image.repository_arn],
        ),
        # ecr:GetAuthorizationToken takes no resource: AWS allows only "*" for it.
        iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
    ]


def model_data_statements(model_data_arn: Optional[str] = None,
                          readable_secret_arn: Optional[str] = None) -> list[iam.PolicyStatement]:
    """Reading a model's model.tar.gz and the Hub token secret its code reads, where it has them."""
    statements = []
    if model_data_arn is not None:
        statements.append(iam.PolicyStatement(
            sid="ReadModelArtifact", actions=["s3:GetObject"], resources=[model_data_arn]))
    if readable_secret_arn is not None:
        statements.append(iam.PolicyStatement(
            sid="ReadHubToken", actions=["secretsmanager:GetSecretValue"], resources=[readable_secret_arn]))
    return statements


def execution_role(scope: Construct, description: str, policy_name: str,
                   statements: list[iam.PolicyStatement]) -> iam.Role:
    """A role SageMaker assumes to run a model's container, its policy inline in the role itself, so the policy
    exists before the model is created (no ordering race)."""
    return iam.Role(scope, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                    description=description, inline_policies={policy_name: iam.PolicyDocument(statements=statements)})


def container_model(scope: Construct, *, role_arn: str, image: ContainerImage,
                    environment: Optional[Mapping[str, str]] = None, model_data_url: Optional[str] = None,
                    placement: Optional[Placement] = None, network_isolation: bool = False) -> sagemaker.CfnModel:
    """The SageMaker model of one container (construct id "Model"): an endpoint's, a shared component's or a batch
    model's. No name: CloudFormation generates one, so a change creates a new model instead of clashing."""
    return sagemaker.CfnModel(
        scope, "Model",
        execution_role_arn=role_arn,
        primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
            image=image.uri, model_data_url=model_data_url, environment=dict(environment or {})),
        vpc_config=None if placement is None else sagemaker.CfnModel.VpcConfigProperty(
            subnets=list(placement.subnet_ids), security_group_ids=list(placement.security_group_ids)),
        enable_network_isolation=True if network_isolation else None,
    )


def volume_key_statements(key_arn: str, region: str) -> list[iam.PolicyStatement]:
    """Use of the ML storage volume's key only through SageMaker and EC2 (EBS), which encrypt the instances'
    volumes with it (kms:ViaService, AWS KMS Developer Guide), and grants only for AWS resources
    (kms:GrantIsForAWSResource: EBS attaches volumes through grants)."""
    via = {"kms:ViaService": [f"sagemaker.{region}.amazonaws.com", f"ec2.{region}.amazonaws.com"]}
    return [
        iam.PolicyStatement(sid="UseVolumeKey", actions=["kms:Decrypt", "kms:DescribeKey",
                                                         "kms:GenerateDataKeyWithoutPlaintext"],
                            resources=[key_arn], conditions={"StringEquals": via}),
        iam.PolicyStatement(sid="GrantVolumeKey", actions=["kms:CreateGrant"], resources=[key_arn],
                            conditions={"StringEquals": via, "Bool": {"kms:GrantIsForAWSResource": "true"}}),
    ]


def metrics_statement(namespace: str = METRICS_NAMESPACE, sid: str = "PublishEndpointMetrics") -> iam.PolicyStatement:
    """cloudwatch:PutMetricData has no resource type ("*" only); the namespace condition is the scope."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["cloudwatch:PutMetricData"],
        resources=["*"],
        conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
    )


class ModelEndpoint(Construct):
    """One model served on a SageMaker endpoint, with a least-privilege execution role.

    Props:
      endpoint_name: lowercase endpoint name (SageMaker lowercases ARNs; a fixed name lets the role and the log
        group be made before the endpoint, so the container can pull and log from its first second). Default: a
        name made from the construct's path (stack name included).
      hosting: a deployment.hosting mode config: Realtime(instance_type, min_instances, ...), Serverless(memory_mb,
        ...), Async(instance_type, min_instances=0, ...); default one ml.g5.xlarge instance. Its scale() hook
        autoscales it: Realtime with max_instances above min_instances on invocations (autoscale()), Async on its
        backlog (autoscale_on_backlog()).
      job_bucket / job_model: for a mode that takes jobs (Async), the ImageBucket made with a job_prefix and the
        model's name in its job layout; the role may read that model's job inputs and write its answers and
        failures, nothing else.
      image: the container image (ContainerImage); the role may pull from its repository only.
      environment: container environment (e.g. HF_MODEL_ID); values may be tokens such as dynamic references.
      model_data_url / model_data_arn: the model.tar.gz (S3 URL for SageMaker, object ARN for the role), optional.
      volume_kms_key_arn: KMS key for the ML storage volume; None on NVMe instance types (SageMaker rejects it).
      log_retention: retention of the endpoint's log group (default one month).
      readable_secret_arn: a Secrets Manager secret the container may read (e.g. the Hub token its model_fn reads,
        so the token is not in the model's environment); an ARN, "-??????" allowed for a name's random suffix.
      placement: subnets and security groups of a VPC for the container (stacks.private_network); the role then
        gains the network-interface actions SageMaker needs. Default None: SageMaker's own network.
      network_isolation: the container gets no network at all (weights must come in model_data_url).

    Attributes: role, log_group, model, endpoint_config, endpoint, endpoint_name, endpoint_arn, hosting,
    scalable_target (None unless autoscaled), backlog_alarm (async scaling from zero, else None). Methods:
    grant_invoke, autoscale, autoscale_on_backlog, metric and metric_* helpers.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ContainerImage,
        endpoint_name: Optional[str] = None,
        hosting: Optional[Any] = None,
        job_bucket: Optional[ImageBucket] = None,
        job_model: Optional[str] = None,
        environment: Optional[Mapping[str, str]] = None,
        model_data_url: Optional[str] = None,
        model_data_arn: Optional[str] = None,
        volume_kms_key_arn: Optional[str] = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        readable_secret_arn: Optional[str] = None,
        placement: Optional[Placement] = None,
        network_isolation: bool = False,
    ):
        super().__init__(scope, construct_id)
        hosting = hosting or Realtime(instance_type="ml.g5.xlarge")
        endpoint_name = endpoint_name or Names.unique_resource_name(self, max_length=63, separator="-").lower()
        problems = list(hosting.problems())
        if not ENDPOINT_NAME.match(endpoint_name):
            problems.append(f"endpoint_name {endpoint_name!r} must be lowercase letters, digits and hyphens, "
                            "at most 63 characters")
        if hosting.instances() is None and volume_kms_key_arn is not None:
            problems.append(f"volume_kms_key_arn does not apply to {hosting.name} hosting (it has no ML storage "
                            "volume)")
        if (model_data_url is None) != (model_data_arn is None):
            problems.append("model_data_url and model_data_arn go together")
        if hosting.takes_jobs and (job_bucket is None or job_bucket.job_prefix is None or not job_model):
            problems.append(f"{hosting.name} hosting needs job_bucket (an ImageBucket with a job_prefix) and job_model")
        if problems:
            raise ValueError(f"ModelEndpoint {construct_id}: " + "; ".join(problems))

        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.hosting = hosting
        self.scalable_target: Optional[appscaling.CfnScalableTarget] = None
        self.backlog_alarm: Optional[cloudwatch.CfnAlarm] = None  # async at zero instances: starts one
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)
        # Made here, not by SageMaker on first write, so it has a retention and goes away with the stack.
        self.log_group = logs.LogGroup(
            self, "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        statements = image_statements(image) + [
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            # CreateLogGroup on the group that already exists (its ARN without the ":*" of streams): SageMaker may
            # ask for it at start, and a denial there is a needless risk; it can create no other group.
            iam.PolicyStatement(
                sid="EnsureOwnLogGroup",
                actions=["logs:CreateLogGroup"],
                resources=[stack.format_arn(service="logs", resource="log-group",
                                            resource_name=self.log_group.log_group_name,
                                            arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            ),
            metrics_statement(),
        ] + model_data_statements(model_data_arn, readable_secret_arn)
        if hosting.takes_jobs:
            statements += job_bucket.job_processing_statements(job_model)
        if placement is not None:
            statements += sagemaker_network_statements(placement.vpc_id)
        if volume_kms_key_arn is not None:
            statements += volume_key_statements(volume_kms_key_arn, stack.region)
        self.role = execution_role(self, f"Execution role of SageMaker endpoint {endpoint_name}", "ServeModel",
                                   statements)
        self.model = container_model(self, role_arn=self.role.role_arn, image=image, environment=environment,
                                     model_data_url=model_data_url, placement=placement,
                                     network_isolation=network_isolation)
        # No names on model and config: CloudFormation generates them, so a change (new instance type, new code)
        # creates a new config and updates the endpoint in place instead of failing on a name clash.
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "Config",
            kms_key_id=volume_kms_key_arn,
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=self.model.attr_model_name,
                initial_variant_weight=1.0,
                **_variant_properties(hosting),
            )],
            async_inference_config=_async_config(hosting, job_bucket, job_model) if hosting.takes_jobs else None,
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            # Autoscaled: a new config (new code, image or environment) keeps the instance count autoscaling has
            # reached instead of dropping back to min_instances during a deploy (UpdateEndpoint
            # RetainAllVariantProperties, SageMaker Developer Guide "Update endpoints that use auto scaling").
            retain_all_variant_properties=True if hosting.autoscaled else None,
        )
        self.endpoint.node.add_dependency(self.log_group)
        if hosting.takes_jobs:
            job_bucket.acknowledge_job_wildcards(
                self.role, [f"*/input-{job_model}.json", f"output/{job_model}/*", f"failures/{job_model}/*"],
                "SageMaker reads each job's input by its random job id and names each answer and failure itself, so "
                "the role reads this model's job inputs and writes under this model's output and failure folders.")
        hosting.scale(self)

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """The hosting mode's invoke action on this endpoint only: sagemaker:InvokeEndpoint, or
        sagemaker:InvokeEndpointAsync for async (an async endpoint answers only that)."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=[self.hosting.invoke_action],
                                          resource_arns=[self.endpoint_arn])

    def autoscale(self, min_instances: int, max_instances: int, target_invocations: float, *,
                  scale_in_cooldown_seconds: int = 900, scale_out_cooldown_seconds: int = 300
                  ) -> appscaling.CfnScalableTarget:
        """Target tracking of invocations per instance per minute, between min and max instances.

        No role is given: Application Auto Scaling then uses its service-linked role for SageMaker
        (AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint, made on first use), so no role of this stack
        gains scaling rights. Changing the instance type of an autoscaled endpoint fails the update (SageMaker
        refuses it while the variant is registered): set max_instances to min_instances, deploy, then change it.
        """
        if self.hosting.instances() is None or self.hosting.takes_jobs:
            raise ValueError(f"ModelEndpoint {self.node.id}: only instance (realtime) hosting autoscales on "
                             "invocations")
        if not 1 <= min_instances <= max_instances:
            raise ValueError(f"ModelEndpoint {self.node.id}: need 1 <= min_instances <= max_instances")
        self._scalable_target(min_instances, max_instances)
        appscaling.CfnScalingPolicy(
            self, "InvocationsPerInstance",
            policy_name=f"{self.endpoint_name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.scalable_target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy
            .TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(target_invocations),
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"),
                scale_in_cooldown=scale_in_cooldown_seconds,
                scale_out_cooldown=scale_out_cooldown_seconds,
            ),
        )
        return self.scalable_target

    def _scalable_target(self, min_instances: int, max_instances: int) -> appscaling.CfnScalableTarget:
        if self.scalable_target is not None:
            raise ValueError(f"ModelEndpoint {self.node.id}: autoscaling is already set")
        self.scalable_target = appscaling.CfnScalableTarget(
            self, "ScalableTarget",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_instances,
            max_capacity=max_instances,
        )
        self.scalable_target.node.add_dependency(self.endpoint)
        return self.scalable_target

    def autoscale_on_backlog(self, min_instances: int, max_instances: int, target_backlog: float, *,
                             scale_in_cooldown_seconds: int = 900, scale_out_cooldown_seconds: int = 300
                             ) -> appscaling.CfnScalableTarget:
        """Async endpoints: target tracking of jobs waiting per instance (ApproximateBacklogSizePerInstance), and,
        when min_instances is 0, a step policy that adds an instance when jobs wait and none runs: target tracking
        alone would not leave zero until the backlog exceeded the target (Developer Guide, "Autoscale an
        asynchronous endpoint": its HasBacklogWithoutCapacity alarm, 2 of 2 one-minute periods >= 1). The
        service-linked role does the scaling, as for autoscale()."""
        if not self.hosting.takes_jobs:
            raise ValueError(f"ModelEndpoint {self.node.id}: only async hosting scales on a backlog")
        if not 0 <= min_instances <= max_instances or max_instances < 1:
            raise ValueError(f"ModelEndpoint {self.node.id}: need 0 <= min_instances <= max_instances, max >= 1")
        target = self._scalable_target(min_instances, max_instances)
        dimensions = [appscaling.CfnScalingPolicy.MetricDimensionProperty(name="EndpointName",
                                                                          value=self.endpoint_name)]
        appscaling.CfnScalingPolicy(
            self, "BacklogPerInstance",
            policy_name=f"{self.endpoint_name}-backlog-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy
            .TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(target_backlog),
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metric_name="ApproximateBacklogSizePerInstance", namespace="AWS/SageMaker",
                    dimensions=dimensions, statistic="Average"),
                scale_in_cooldown=scale_in_cooldown_seconds,
                scale_out_cooldown=scale_out_cooldown_seconds,
            ),
        )
        if min_instances == 0:
            start = appscaling.CfnScalingPolicy(
                self, "StartOnBacklog",
                policy_name=f"{self.endpoint_name}-start-on-backlog",
                policy_type="StepScaling",
                scaling_target_id=target.ref,
                step_scaling_policy_configuration=appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
                    adjustment_type="ChangeInCapacity",
                    cooldown=scale_out_cooldown_seconds,
                    metric_aggregation_type="Average",
                    step_adjustments=[appscaling.CfnScalingPolicy.StepAdjustmentProperty(
                        metric_interval_lower_bound=0, scaling_adjustment=1)],
                ),
            )
            self.backlog_alarm = cloudwatch.CfnAlarm(
                self, "BacklogWithoutCapacity",
                alarm_description=f"Jobs wait for {self.endpoint_name} and no instance runs: start one",
                namespace="AWS/SageMaker",
                metric_name="HasBacklogWithoutCapacity",
                dimensions=[cloudwatch.CfnAlarm.DimensionProperty(name="EndpointName", value=self.endpoint_name)],
                statistic="Average",
                period=60,
                evaluation_periods=2,
                datapoints_to_alarm=2,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="missing",
                alarm_actions=[start.ref],  # a scaling policy's Ref is its ARN
            )
        return target

    def metric(self, metric_name: str, *, statistic: str = "Sum", period: Duration = Duration.minutes(1),
               namespace: str = "AWS/SageMaker") -> cloudwatch.Metric:
        """A CloudWatch metric of this endpoint's variant (AWS/SageMaker: Invocations, ModelLatency, ...;
        namespace "/aws/sagemaker/Endpoints" for CPUUtilization, GPUUtilization, ...)."""
        return cloudwatch.Metric(namespace=namespace, metric_name=metric_name, statistic=statistic, period=period,
                                 dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT_NAME})

    def metric_invocations(self, **kwargs) -> cloudwatch.Metric:
        return self.metric("Invocations", **kwargs)

    def metric_model_latency(self, statistic: str = "p90", **kwargs) -> cloudwatch.Metric:
        """Microseconds the model took (SageMaker reports ModelLatency in microseconds)."""
        return self.metric("ModelLatency", statistic=statistic, **kwargs)

    def metric_invocation_5xx_errors(self, **kwargs) -> cloudwatch.Metric:
        return self.metric("Invocation5XXErrors", **kwargs)

    def metric_invocation_4xx_errors(self, **kwargs) -> cloudwatch.Metric:
        return self.metric("Invocation4XXErrors", **kwargs)


def _async_config(hosting, bucket: ImageBucket, model: str):
    """CfnEndpointConfig.AsyncInferenceConfigProperty: answers and failures under the bucket's job prefix."""
    return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
        output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
            s3_output_path=bucket.job_output_uri(model),
            s3_failure_path=bucket.job_failure_uri(model),
            kms_key_id=bucket.encryption_key.key_arn if bucket.encryption_key is not None else None,
        ),
        client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
            max_concurrent_invocations_per_instance=hosting.max_concurrent_invocations),
    )
