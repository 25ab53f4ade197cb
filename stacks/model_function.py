"""The Lambda function serving one model's routes, with a role that reaches that model's endpoint only."""

from __future__ import annotations

from typing import Mapping, Optional

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from deployment.lambda_source import ASSET_EXCLUDE, LAMBDA_DIR, STREAM_WRAPPER, not_executable
from stacks.function_logs import own_logs_role
from stacks.image_bucket import ImageBucket
from stacks.private_network import Placement, lambda_network_statement

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14


def api_lambda_function(scope: Construct, construct_id: str, *, handler: str, role: iam.IRole,
                        log_group: logs.ILogGroup, **props) -> lambda_.Function:
    """A function of the API: the lambda/ folder (one asset for every function: our modules only, boto3 from the
    runtime), the pinned runtime on arm64, its own role and log group, Lambda's JSON log format (one object per
    line, `extra` fields at the root: model_api.telemetry)."""
    return lambda_.Function(
        scope, construct_id,
        runtime=LAMBDA_RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        code=lambda_.Code.from_asset(str(LAMBDA_DIR), exclude=ASSET_EXCLUDE),
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        **props,
    )


class ModelFunction(Construct):
    """lambda/handler.py deployed for one model.

    Props:
      model_name: the model this function serves (its routes only, see model_api.routes).
      endpoint_arn: the one SageMaker endpoint the role may invoke; None when the caller grants it instead
        (ModelEndpoint.grant_invoke(function.role)).
      environment: the handler's environment (model, catalog, pipeline settings).
      images: an ImageBucket for text-to-image models; the role may write and delete under its prefix only, and
        assume the bucket's URL signer (read-only) to presign.
      jobs: for a model hosted async, the ImageBucket (made with a job_prefix) its jobs live in; the role may write
        this model's job inputs and records and read (and list) only the job prefix (ImageBucket.grant_job_access).
      timeout_seconds: Lambda timeout (default 28, one second inside API Gateway's 29).
      memory_mb: memory (and so CPU) of the function (default 512).
      log_retention: retention of the function's log group (default one month).
      log_level: application log level, INFO (default) or DEBUG; logs are Lambda's JSON format.
      tracing: X-Ray active tracing (default off); the role then gains xray:PutTraceSegments and
        xray:PutTelemetryRecords, which take no resource ("*").
      placement: subnets and security groups of a VPC to run in (stacks.private_network); the role then gains
        the network-interface actions Lambda uses for it (those of AWSLambdaVPCAccessExecutionRole, inline).
      snapstart: Lambda SnapStart (default off): each deploy publishes a version, Lambda snapshots it after init
        (imports, clients) and new execution environments resume from the snapshot; callers must invoke the alias
        `live` that points at that version (`invocable`), since $LATEST has no snapshot.
      streaming: the function streams its answers (default off): lambda/stream_handler.py under our streaming
        runtime (lambda/stream_runtime.py), which lambda/stream_bootstrap, the AWS_LAMBDA_EXEC_WRAPPER, starts with
        the managed Python runtime's interpreter; the API must invoke it with a STREAM integration
        (ModelRestApi.add_route stream_seconds). Not with snapstart (its snapshot hooks are the managed runtime's).

    Attributes: function, role, log_group, alias (None without snapstart), invocable (what a caller invokes: the
    alias with snapstart, else the function).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_name: str,
        endpoint_arn: Optional[str] = None,
        environment: Mapping[str, str],
        images: Optional[ImageBucket] = None,
        jobs: Optional[ImageBucket] = None,
        timeout_seconds: int = 28,
        memory_mb: int = 512,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_level: str = "INFO",
        tracing: bool = False,
        placement: Optional[Placement] = None,
        snapstart: bool = False,
        streaming: bool = False,
    ):
        super().__init__(scope, construct_id)
        if streaming and snapstart:
            raise ValueError(f"ModelFunction {construct_id}: streaming runs its own runtime loop; SnapStart "
                             "snapshots the managed runtime's: not both")
        if streaming and not_executable(STREAM_WRAPPER):
            raise ValueError(f"ModelFunction {construct_id}: {not_executable(STREAM_WRAPPER)}")
        if not 1 <= timeout_seconds <= 900:
            raise ValueError(f"ModelFunction {construct_id}: timeout_seconds must be from 1 to 900")
        if log_level not in ("INFO", "DEBUG"):
            raise ValueError(f"ModelFunction {construct_id}: log_level must be INFO or DEBUG (the request line, "
                             "which carries the metrics, is INFO)")
        self.log_group, self.role = own_logs_role(
            self, log_retention=log_retention,
            description=f"Model API Lambda of {model_name}: invoke its endpoint, write own logs"
                        + (", store images under one prefix" if images else "")
                        + (", queue and read async jobs" if jobs else ""))
        if endpoint_arn is not None:
            iam.Grant.add_to_principal(grantee=self.role, actions=["sagemaker:InvokeEndpoint"],
                                       resource_arns=[endpoint_arn])
        signer = None
        if images is not None:
            images.grant_image_access(self.role)
            signer = images.grant_presign(self.role)
        if jobs is not None:
            jobs.grant_job_access(self.role, model_name)
        if placement is not None:
            self.role.add_to_principal_policy(lambda_network_statement())
        self.function = api_lambda_function(
            self, "Function",
            handler="stream_handler.handler" if streaming else "handler.handler",
            role=self.role,
            log_group=self.log_group,
            application_log_level_v2=lambda_.ApplicationLogLevel[log_level],
            system_log_level_v2=lambda_.SystemLogLevel.INFO,  # START, END and REPORT (duration, memory) lines
            tracing=lambda_.Tracing.ACTIVE if tracing else None,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            # A version replaced by the next deploy's is deleted (CDK keeps old ones by default); the function's
            # delete takes every version with it either way.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY) if snapstart
            else None,
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_seconds),
            description=f"Model API: requests for model {model_name}",
            environment={**environment,
                         # Lambda starts this wrapper with the runtime's interpreter; it runs our streaming loop.
                         **({"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/stream_bootstrap"} if streaming else {}),
                         # In a VPC, STS is reachable only at its regional name (the interface endpoint's private
                         # DNS); botocore's older "legacy" default sends us-east-1 to the global sts.amazonaws.com.
                         **({"AWS_STS_REGIONAL_ENDPOINTS": "regional"} if placement is not None else {}),
                         **({"BUCKET_NAME": jobs.bucket.bucket_name} if jobs else {}),
                         **({"BUCKET_NAME": images.bucket.bucket_name,
                             "SIGNER_ROLE_ARN": signer.role_arn} if images else {})},
        )
        if placement is not None:  # subnet and group ids, not an IVpc: an existing VPC needs no lookup at synth
            cfn = self.function.node.default_child
            cfn.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
                subnet_ids=list(placement.subnet_ids), security_group_ids=list(placement.security_group_ids))
            cfn.node.add_dependency(self.role)  # its network-interface rights before Lambda makes the interfaces
        self.alias = None
        if snapstart:
            # current_version publishes a new version whenever the code or configuration changes; the alias moves
            # with it, so the API keeps one integration and always calls the latest snapshot.
            self.alias = lambda_.Alias(self, "Live", alias_name="live", version=self.function.current_version)
        self.invocable: lambda_.IFunction = self.alias or self.function

