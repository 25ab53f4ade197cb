"""A SageMaker real-time endpoint for one model: execution role, log group, model, endpoint config, endpoint."""

from __future__ import annotations

import re
from typing import Mapping, Optional

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.container_images import ContainerImage

ENDPOINT_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
# The namespace SageMaker hosting publishes endpoint metrics under; the role may write no other.
METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


class ModelEndpoint(Construct):
    """One model served on a real-time endpoint, with a least-privilege execution role.

    Props:
      endpoint_name: lowercase endpoint name (SageMaker lowercases ARNs; a fixed name lets the role and the log
        group be made before the endpoint, so the container can pull and log from its first second).
      image: the container image (ContainerImage); the role may pull from its repository only.
      environment: container environment (e.g. HF_MODEL_ID); values may be tokens such as dynamic references.
      model_data_url / model_data_arn: the model.tar.gz (S3 URL for SageMaker, object ARN for the role), optional.
      instance_type, instance_count: hosting instances (default one ml.g5.xlarge).
      startup_timeout_seconds: container startup health-check timeout (60..3600, default 600); a model whose
        weights download at start needs several minutes.
      volume_size_gb: ML storage volume size; None for SageMaker's default (required on NVMe instance types).
      volume_kms_key_arn: KMS key for the ML storage volume; None on NVMe instance types (SageMaker rejects it).
      log_retention: retention of the endpoint's log group (default one month).
      readable_secret_arn: a Secrets Manager secret the container may read (e.g. the Hub token its model_fn reads,
        so the token is not in the model's environment); an ARN, "-??????" allowed for a name's random suffix.

    Attributes: role, log_group, model, endpoint_config, endpoint, endpoint_name, endpoint_arn.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        image: ContainerImage,
        environment: Optional[Mapping[str, str]] = None,
        model_data_url: Optional[str] = None,
        model_data_arn: Optional[str] = None,
        instance_type: str = "ml.g5.xlarge",
        instance_count: int = 1,
        startup_timeout_seconds: int = 600,
        volume_size_gb: Optional[int] = None,
        volume_kms_key_arn: Optional[str] = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        readable_secret_arn: Optional[str] = None,
    ):
        super().__init__(scope, construct_id)
        problems = []
        if not ENDPOINT_NAME.match(endpoint_name):
            problems.append(f"endpoint_name {endpoint_name!r} must be lowercase letters, digits and hyphens, "
                            "at most 63 characters")
        if instance_count < 1:
            problems.append("instance_count must be at least 1")
        if not 60 <= startup_timeout_seconds <= 3600:
            problems.append("startup_timeout_seconds must be from 60 to 3600")
        if (model_data_url is None) != (model_data_arn is None):
            problems.append("model_data_url and model_data_arn go together")
        if problems:
            raise ValueError(f"ModelEndpoint {construct_id}: " + "; ".join(problems))

        stack = Stack.of(self)
        self.endpoint_name = endpoint_name
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name)
        # Made here, not by SageMaker on first write, so it has a retention and goes away with the stack.
        self.log_group = logs.LogGroup(
            self, "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        statements = [
            iam.PolicyStatement(
                sid="PullModelImage",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[image.repository_arn],
            ),
            # ecr:GetAuthorizationToken takes no resource: AWS allows only "*" for it.
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
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
            # cloudwatch:PutMetricData has no resource type ("*" only); the namespace condition is the scope.
            iam.PolicyStatement(
                sid="PublishEndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            ),
        ]
        if model_data_arn is not None:
            statements.append(iam.PolicyStatement(
                sid="ReadModelArtifact", actions=["s3:GetObject"], resources=[model_data_arn]))
        if readable_secret_arn is not None:
            statements.append(iam.PolicyStatement(
                sid="ReadHubToken", actions=["secretsmanager:GetSecretValue"], resources=[readable_secret_arn]))
        if volume_kms_key_arn is not None:
            statements.append(iam.PolicyStatement(
                sid="UseVolumeKey", actions=["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
                                             "kms:GenerateDataKeyWithoutPlaintext"],
                resources=[volume_kms_key_arn]))
        # Inline in the role itself, so the policy exists before the model is created (no ordering race).
        self.role = iam.Role(
            self, "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Execution role of SageMaker endpoint {endpoint_name}",
            inline_policies={"ServeModel": iam.PolicyDocument(statements=statements)},
        )
        self.model = sagemaker.CfnModel(
            self, "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image.uri,
                model_data_url=model_data_url,
                environment=dict(environment or {}),
            ),
        )
        # No names on model and config: CloudFormation generates them, so a change (new instance type, new code)
        # creates a new config and updates the endpoint in place instead of failing on a name clash.
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "Config",
            kms_key_id=volume_kms_key_arn,
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name="AllTraffic",
                model_name=self.model.attr_model_name,
                initial_instance_count=instance_count,
                instance_type=instance_type,
                initial_variant_weight=1.0,
                container_startup_health_check_timeout_in_seconds=startup_timeout_seconds,
                volume_size_in_gb=volume_size_gb,
            )],
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.endpoint.node.add_dependency(self.log_group)

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """sagemaker:InvokeEndpoint on this endpoint only."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=["sagemaker:InvokeEndpoint"],
                                          resource_arns=[self.endpoint_arn])
