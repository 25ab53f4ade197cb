"""The SageMaker model batch transform jobs of one served model run on (`make batch`, ops/batch.py).

A transform job runs with its model's execution role: CreateTransformJob takes no role of its own (API reference,
CreateTransformJob). So batch jobs get a model of their own, with the same container, code and weights as the
model's endpoint, and a role that may read only that model's batch inputs and write only its batch outputs; the
endpoint's role gains nothing. A SageMaker model costs nothing until a job runs on it.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct

from deployment.container_images import ContainerImage
from stacks.image_bucket import ImageBucket
from stacks.model_endpoint import (
    container_model,
    execution_role,
    image_statements,
    metrics_statement,
    model_data_statements,
)
from stacks.private_network import Placement, sagemaker_network_statements

# SageMaker writes every transform job's logs to this one log group, a stream per job and instance named
# "<job name>/<instance id>-<time>" (and "<job name>/<instance id>-<time>/data-log"); it creates the group on first
# use, so no stack owns it.
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
TRANSFORM_METRICS_NAMESPACE = "/aws/sagemaker/TransformJobs"
# Transform job names: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$. ops/batch.py appends "-<yyyymmddThhmmss>-<6 hex>"
# (23 characters) to the prefix, so the prefix may have at most 40.
JOB_NAME_PREFIX = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,39}$")
MAX_JOB_NAME_PREFIX = 40


class BatchModel(Construct):
    """A SageMaker model for batch transform jobs of one served model, with its own least-privilege role.

    Props:
      image: the container image (ContainerImage); the role may pull from its repository only.
      bucket: the ImageBucket made with a batch_prefix; model: the model's name in its layout.
      job_name_prefix: every job's name starts with it (lowercase, at most 40 characters); the role may write only
        the log streams of jobs so named.
      environment: container environment, as the endpoint's (tokens allowed).
      model_data_url / model_data_arn: the model.tar.gz (S3 URL for SageMaker, object ARN for the role), optional.
      readable_secret_arn: a Secrets Manager secret the container may read (the Hub token its code reads).
      placement / network_isolation: as for ModelEndpoint (a job's instances run where the endpoint's do).

    Attributes: role, model (CfnModel), model_name (CloudFormation's generated name), job_name_prefix,
    input_prefix / output_prefix (key patterns of the job files), bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ContainerImage,
        bucket: ImageBucket,
        model: str,
        job_name_prefix: str,
        environment: Optional[Mapping[str, str]] = None,
        model_data_url: Optional[str] = None,
        model_data_arn: Optional[str] = None,
        readable_secret_arn: Optional[str] = None,
        placement: Optional[Placement] = None,
        network_isolation: bool = False,
    ):
        super().__init__(scope, construct_id)
        problems = []
        if bucket.batch_prefix is None:
            problems.append("bucket must be an ImageBucket made with a batch_prefix")
        if not JOB_NAME_PREFIX.match(job_name_prefix):
            problems.append(f"job_name_prefix {job_name_prefix!r} must be lowercase letters, digits and hyphens, at "
                            f"most {MAX_JOB_NAME_PREFIX} characters")
        if (model_data_url is None) != (model_data_arn is None):
            problems.append("model_data_url and model_data_arn go together")
        if problems:
            raise ValueError(f"BatchModel {construct_id}: " + "; ".join(problems))
        stack = Stack.of(self)
        self.bucket = bucket
        self.job_name_prefix = job_name_prefix
        prefix = bucket.batch_model_prefix(model)
        self.input_prefix, self.output_prefix = f"{prefix}*/input/*", f"{prefix}*/output/*"
        log_group_arn = stack.format_arn(service="logs", resource="log-group", resource_name=TRANSFORM_LOG_GROUP,
                                         arn_format=ArnFormat.COLON_RESOURCE_NAME)
        statements = image_statements(image) + model_data_statements(model_data_arn, readable_secret_arn) + [
            # The shared group may not exist yet in a fresh account (SageMaker creates it as the job's role);
            # DescribeLogStreams is an action on the group, not on a stream. Unverified offline: which of these the
            # job's log agent calls (AmazonSageMakerFullAccess grants all four on /aws/sagemaker/*).
            iam.PolicyStatement(sid="UseTransformLogGroup", actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                                resources=[log_group_arn]),
            iam.PolicyStatement(sid="WriteOwnJobLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[f"{log_group_arn}:log-stream:{job_name_prefix}-*"]),
            metrics_statement(TRANSFORM_METRICS_NAMESPACE, sid="PublishJobMetrics"),
        ] + bucket.batch_processing_statements(model) + (sagemaker_network_statements(placement.vpc_id) if placement else [])
        self.role = execution_role(self, f"Execution role of the batch transform jobs {job_name_prefix}-*",
                                   "RunBatchJobs", statements)
        self.model = container_model(self, role_arn=self.role.role_arn, image=image, environment=environment,
                                     model_data_url=model_data_url, placement=placement,
                                     network_isolation=network_isolation)
        self.model_name = self.model.attr_model_name
        bucket_id = stack.get_logical_id(bucket.bucket.node.default_child)
        reason = ("A transform job runs with its model's role, fixed at deploy time, while job names are made when "
                  "a job starts: the role reads this model's batch inputs and writes its batch outputs under any job "
                  "folder, nothing else in the bucket.")
        for pattern in (self.input_prefix, self.output_prefix):
            Validations.of(self.role).acknowledge(Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{pattern}]", reason=reason))
        Validations.of(self.role).acknowledge(Acknowledgment(
            id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
               f"{TRANSFORM_LOG_GROUP}:log-stream:{job_name_prefix}-*]",
            reason="SageMaker names each job's log streams after the job, made when it starts: the role writes only "
                   "streams of jobs named with this model's prefix."))
        Validations.of(self.role).acknowledge(Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="Only ecr:GetAuthorizationToken and cloudwatch:PutMetricData, which AWS allows on '*' alone; the "
                   "metrics one is scoped by a namespace condition."))
