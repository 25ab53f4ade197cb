"""The API key authorizer: lets a client send the API key as x-api-key or as `Authorization: Bearer <key>` (what the
openai SDK and huggingface_hub send), on an API whose key source is AUTHORIZER.

The function (lambda/authorizer.py) holds no secret and calls nothing: it hands the key it finds to API Gateway as
usageIdentifierKey, and API Gateway checks that key against the usage plan's keys exactly as it checks an x-api-key
header, then throttles and meters by it ("Choose an API key source in API Gateway": with AUTHORIZER, a key that is
not in the plan is 403 Forbidden). Caching is off: a REQUEST authorizer caches by its identity sources, and "either
of two headers" is not one source (with caching off, API Gateway makes them optional).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.function_logs import own_logs_role
from stacks.model_function import api_lambda_function


class KeyAuthorizer(Construct):
    """Props: log_retention (default one month), memory_mb (default 256: it parses two headers), tracing (X-Ray
    active tracing, as the model functions have it with the tracing setting; default off), reserved_concurrency
    (Lambda concurrency kept for it and its ceiling: every request runs it before the key is checked, so a flood of
    keyless requests cannot take the account's concurrency from the model functions, nor theirs from it; default
    10, 0 for none. Lambda keeps 100 of the account's concurrency unreserved and refuses a reservation that would
    leave less: "You can reserve up to the Unreserved account concurrency value minus 100", Lambda Developer Guide,
    "Configuring reserved concurrency"; new accounts may have 10 in all, make preflight checks it).
    Attributes: function, role, log_group, authorizer (attach it to methods with api_key_required=True)."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH, memory_mb: int = 256,
                 tracing: bool = False, reserved_concurrency: int = 10):
        super().__init__(scope, construct_id)
        if not 128 <= memory_mb <= 10240:
            raise ValueError(f"KeyAuthorizer {construct_id}: memory_mb must be from 128 to 10240")
        if not 0 <= reserved_concurrency <= 1000:
            raise ValueError(f"KeyAuthorizer {construct_id}: reserved_concurrency must be from 0 to 1000")
        self.log_group, self.role = own_logs_role(
            self, log_retention=log_retention,
            description="Model API key authorizer: write its own logs, nothing else")
        # The API's own Lambda asset (the same hash: uploaded once); the entry imports only model_api.auth.
        self.function = api_lambda_function(
            self, "Function",
            handler="authorizer.handler",
            role=self.role,
            log_group=self.log_group,
            memory_size=memory_mb,
            timeout=Duration.seconds(3),
            description="Model API: reads the API key from x-api-key or Authorization: Bearer",
            # Traced like the model functions (tracing=true): the authorizer's time is part of every request's.
            tracing=lambda_.Tracing.ACTIVE if tracing else None,
            reserved_concurrent_executions=reserved_concurrency or None,
        )
        self.authorizer = apigw.RequestAuthorizer(
            self, "Authorizer", handler=self.function, identity_sources=[],
            results_cache_ttl=Duration.seconds(0))
        # No identity source at all (CDK writes an empty string): with caching off it is optional, and a listed
        # header would be required, answering 401 before the function runs when a client sends the other one.
        self.authorizer.node.default_child.add_property_deletion_override("IdentitySource")
