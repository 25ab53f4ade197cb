"""The REST API in front of the image endpoint: API key, usage plan, request validation, the Lambda behind it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.image_bucket import ImageBucket
from stacks.lambda_source import LAMBDA_DIR, load_lambda_module
from stacks.model_endpoint import ModelEndpoint

_errors = load_lambda_module("model_api.errors")
_schema = load_lambda_module("model_api.schema")
_images = load_lambda_module("model_api.images")

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
# ResponseType names in CDK differ from API Gateway's for the DEFAULT_ types.
_RESPONSE_TYPES = {"DEFAULT_4XX": "DEFAULT_4_XX", "DEFAULT_5XX": "DEFAULT_5_XX"}
_JSON_SCHEMA_KEYS = {
    "title": "title", "type": "type", "properties": "properties", "required": "required",
    "additionalProperties": "additional_properties", "minLength": "min_length", "maxLength": "max_length",
    "pattern": "pattern", "minimum": "minimum", "maximum": "maximum", "multipleOf": "multiple_of", "enum": "enum_",
}


def to_api_gateway_schema(schema: dict) -> apigw.JsonSchema:
    """model_api's schema dict -> CDK JsonSchema (the API Gateway model renders it back as the same JSON)."""
    kwargs: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            kwargs["schema"] = apigw.JsonSchemaVersion.DRAFT4
        elif key == "type":
            kwargs["type"] = apigw.JsonSchemaType[value.upper()]
        elif key == "properties":
            kwargs["properties"] = {name: to_api_gateway_schema(sub) for name, sub in value.items()}
        elif key in _JSON_SCHEMA_KEYS:
            kwargs[_JSON_SCHEMA_KEYS[key]] = value
        else:
            raise ValueError(f"schema keyword {key!r} has no API Gateway mapping")
    return apigw.JsonSchema(**kwargs)


class ImageApi(Construct):
    """POST /images and GET /images?prompt=... behind an API key, a usage plan and request validation.

    Props:
      endpoint: the ModelEndpoint to invoke (the Lambda may invoke only this endpoint).
      images: the ImageBucket to store images in (the Lambda may touch only its key prefix).
      limits: model_api.schema.ImageLimits, the request bounds of both the gateway model and the handler.
      url_ttl_seconds: lifetime of the presigned image URLs (default 900).
      timeout_seconds: API Gateway integration timeout (default 29, the REST maximum without a quota increase);
        the Lambda gets one second less and the endpoint read timeout `invoke_read_timeout_seconds`.
      invoke_read_timeout_seconds: SageMaker read timeout inside the Lambda (default timeout_seconds - 7).
      throttle_rate, throttle_burst, daily_quota: usage plan limits of the API key (defaults 2/s, 5, 1000/day).
      log_retention: retention of the Lambda and access log groups (default one month).
      stage_name: API stage (default "v1").

    Attributes: function, role, api, api_key, usage_plan, images_url, function_log_group, access_log_group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: ModelEndpoint,
        images: ImageBucket,
        limits=None,
        url_ttl_seconds: int = 900,
        timeout_seconds: int = 29,
        invoke_read_timeout_seconds: int | None = None,
        throttle_rate: float = 2.0,
        throttle_burst: int = 5,
        daily_quota: int = 1000,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        stage_name: str = "v1",
    ):
        super().__init__(scope, construct_id)
        limits = limits or _schema.ImageLimits()
        read_timeout = invoke_read_timeout_seconds or timeout_seconds - 7
        problems = list(limits.problems())
        if not 2 <= timeout_seconds <= 29:
            problems.append("timeout_seconds must be from 2 to 29")
        if not 1 <= read_timeout < timeout_seconds - 1:
            problems.append("invoke_read_timeout_seconds must be at least 1 and below the Lambda timeout")
        if throttle_rate <= 0 or throttle_burst < 1 or daily_quota < 1:
            problems.append("throttle_rate, throttle_burst and daily_quota must be positive")
        if problems:
            raise ValueError(f"ImageApi {construct_id}: " + "; ".join(problems))

        self.function_log_group = logs.LogGroup(
            self, "FunctionLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        # Our own role and log policy instead of AWSLambdaBasicExecutionRole, which may write to every log group.
        self.role = iam.Role(
            self, "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Image API Lambda: invoke one endpoint, store images under one prefix, write own logs",
        )
        iam.Grant.add_to_principal(
            grantee=self.role,
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resource_arns=[self.function_log_group.log_group_arn],
        )
        endpoint.grant_invoke(self.role)
        images.grant_image_access(self.role)

        self.function = lambda_.Function(
            self, "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(LAMBDA_DIR), exclude=["__pycache__", "*.pyc", "**/__pycache__"]),
            role=self.role,
            log_group=self.function_log_group,
            memory_size=512,
            timeout=Duration.seconds(timeout_seconds - 1),
            description="Model API: validate, invoke the SageMaker endpoint, store images, return presigned URLs",
            environment={
                "ENDPOINT_NAME": endpoint.endpoint_name,
                "BUCKET_NAME": images.bucket.bucket_name,
                "INVOKE_READ_TIMEOUT_SECONDS": str(read_timeout),
                **_images.ImageConfig(url_ttl_seconds, limits, images.key_prefix).to_env(),
            },
        )

        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        stack_name = Stack.of(self).stack_name
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=stack_name,
            description="Text-to-image API on a SageMaker endpoint",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            # Execution logging needs the account-wide API Gateway CloudWatch role, shared by every API in the
            # region and left behind by `cdk destroy`; access logs below record every request instead.
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=False,
                ),
                throttling_rate_limit=throttle_rate,
                throttling_burst_limit=throttle_burst,
            ),
        )
        # The stack outputs the /images URL itself; the base URL output RestApi adds would only be a second,
        # less useful URL.
        self.api.node.try_remove_child("Endpoint")
        for response_type, (status, code) in _errors.GATEWAY_ERRORS.items():
            headers = {"Content-Type": "'application/json'"}
            if status == 429:
                headers["Retry-After"] = "'1'"
            self.api.add_gateway_response(
                f"Gateway{response_type.title().replace('_', '')}",
                type=getattr(apigw.ResponseType, _RESPONSE_TYPES.get(response_type, response_type)),
                status_code=None if response_type.startswith("DEFAULT_") else str(status),
                templates={"application/json": _errors.gateway_response_template(code)},
                response_headers=headers,
            )

        request_model = self.api.add_model(
            "ImageRequestModel",
            content_type="application/json",
            model_name="ImageRequest",
            schema=to_api_gateway_schema(_schema.image_request_schema(limits)),
        )
        # One validator for both methods: GET has no body model and POST no required parameters, so each method is
        # checked on what it has.
        validator = self.api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True)
        integration = apigw.LambdaIntegration(self.function, proxy=True, timeout=Duration.seconds(timeout_seconds))
        resource = self.api.root.add_resource(_schema.IMAGES_PATH.strip("/"))
        resource.add_method(
            "POST", integration,
            api_key_required=True,
            request_validator=validator,
            request_models={"application/json": request_model},
        )
        resource.add_method(
            "GET", integration,
            api_key_required=True,
            request_validator=validator,
            request_parameters={f"method.request.querystring.{name}": True
                                for name in _schema.REQUIRED_QUERY_PARAMETERS},
        )

        self.api_key = apigw.ApiKey(self, "ApiKey", description=f"Key of the {stack_name} image API")
        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan",
            description="Throttle and daily quota of the image API key",
            throttle=apigw.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
            quota=apigw.QuotaSettings(limit=daily_quota, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        self.usage_plan.add_api_key(self.api_key)
        self.images_url = self.api.url_for_path(_schema.IMAGES_PATH)
