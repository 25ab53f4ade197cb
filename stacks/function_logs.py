"""A Lambda function's own log group and a role that may write only there (every function of the stack has one)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct


def own_logs_role(scope: Construct, *, description: str, log_retention: logs.RetentionDays,
                  log_group_id: str = "Logs", role_id: str = "Role") -> tuple[logs.LogGroup, iam.Role]:
    """A function's log group (deleted with the stack) and a Lambda role that may write to it and nowhere else: not
    AWSLambdaBasicExecutionRole, which may write to every log group. The caller grants the role what else it does."""
    log_group = logs.LogGroup(scope, log_group_id, retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
    role = iam.Role(scope, role_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description)
    iam.Grant.add_to_principal(grantee=role, actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                               resource_arns=[log_group.log_group_arn])
    return log_group, role
