"""The function that answers requests the API has no route for (lambda/unrouted.py): 405 with the path's methods,
or 404 naming the routes, in the API's error shape."""

from __future__ import annotations

from typing import Mapping

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.function_logs import own_logs_role
from stacks.model_function import api_lambda_function


class UnroutedFunction(Construct):
    """Props: environment (MODEL_CATALOG and CORS_ORIGINS: what the routes and the CORS answer need), log_retention
    (default one month), tracing (X-Ray, as the other functions; default off), memory_mb (default 256).
    Attributes: function, role (writes its own log group, nothing else), log_group."""

    def __init__(self, scope: Construct, construct_id: str, *, environment: Mapping[str, str],
                 log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH, tracing: bool = False,
                 memory_mb: int = 256):
        super().__init__(scope, construct_id)
        if "MODEL_CATALOG" not in environment:
            raise ValueError(f"UnroutedFunction {construct_id}: environment needs MODEL_CATALOG (the routes)")
        if not 128 <= memory_mb <= 10240:
            raise ValueError(f"UnroutedFunction {construct_id}: memory_mb must be from 128 to 10240")
        self.log_group, self.role = own_logs_role(
            self, log_retention=log_retention,
            description="Model API fallback for unknown routes: write its own logs, nothing else")
        self.function = api_lambda_function(
            self, "Function", handler="unrouted.handler", role=self.role, log_group=self.log_group,
            memory_size=memory_mb, timeout=Duration.seconds(3), environment=dict(environment),
            description="Model API: answers paths and methods the API does not have (404, 405)",
            tracing=lambda_.Tracing.ACTIVE if tracing else None)
