"""The REST API: who may call (API key with usage plan, IAM or Cognito), JSON error bodies, access logs; routes to the
functions."""

from __future__ import annotations

from typing import Optional

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from constructs import Construct
from model_api import cors as _cors
from model_api import errors as _errors

from stacks.key_authorizer import KeyAuthorizer

# ResponseType names in CDK differ from API Gateway's for the DEFAULT_ types.
_RESPONSE_TYPES = {"DEFAULT_4XX": "DEFAULT_4_XX", "DEFAULT_5XX": "DEFAULT_5_XX"}
AUTH_MODES = ("api_key", "iam", "cognito")
# Answers a pipeline may give as bytes (model_api.http.Binary: an image for Accept: image/png). API Gateway sends a
# base64 proxy answer as bytes when the request's first Accept type is one of these; every JSON answer passes as
# text either way.
BINARY_MEDIA_TYPES = ("image/png", "image/jpeg")


class ModelRestApi(Construct):
    """A regional REST API whose every method needs the API key (or, by `auth`, a SigV4 signature or a Cognito token).

    Props:
      timeout_seconds: integration timeout (default 29, the REST maximum without a quota increase).
      throttle_rate, throttle_burst, daily_quota: usage plan of the key (2/s, 5, 1000).
      stage_throttle_rate, stage_throttle_burst: the stage's limit per method, for every caller together (10/s,
        20): above the key's, so callers without a valid key cannot use up what a key holder may send; with iam
        and cognito the only limit.
      authorizer_concurrency: Lambda concurrency reserved for the key authorizer (bearer_keys; default 10, 0 none).
      log_retention: access log retention (default one month).
      stage_name: the stage (default "v1").
      tracing: X-Ray tracing of the stage (default off).
      logging: "account-role" (access logs; the account's API Gateway CloudWatch role must be set already),
        "create-role" (access logs; this construct creates that role and sets the account-wide setting, both kept
        on destroy because every API of the account and region logs through them), or "off" (no access logs).
      cors_origins: web origins browsers may call from (model_api.cors; "*" alone for any); default none: no
        OPTIONS methods and no CORS headers. With origins, every resource answers preflight (OPTIONS, no key) and
        the gateway's own errors carry Access-Control-Allow-Origin (gateway_cors_headers).
      auth: "api_key" (default: the API key, its usage plan throttles and meters each key), "iam" (SigV4: callers
        need execute-api:Invoke, grant_invoke) or "cognito" (an ID token of user_pool_arn's users in
        Authorization). With iam and cognito there is no key and no usage plan: the stage's throttle applies to
        all callers together, and daily_quota is not enforced.
      tracing also traces the key authorizer.
      bearer_keys: auth=api_key: also take the key from `Authorization: Bearer <key>` (KeyAuthorizer; default on).
      user_pool_arn: auth=cognito: the existing user pool.

    Routes are added with add_route and add_document; then add_fallback answers every other path and method, and
    limit_keyless gives the methods that need no key their own small throttle. Errors raised by API Gateway itself
    (bad key, unknown route, throttled, ...) answer in the API's JSON error shape (model_api.errors.GATEWAY_ERRORS).
    Request bodies are validated by the functions, not here: API Gateway's validator tells a client only "Invalid
    request body", and its gateway response templates are not processed by VTL, so its detailed
    $context.error.validationErrorString (which holds double quotes) cannot be escaped into a JSON body. The
    functions name every problem, for every content type.
    Attributes: api, api_key and usage_plan (None unless auth=api_key), key_authorizer (a KeyAuthorizer with
    bearer_keys, else None), cognito_authorizer (auth=cognito, else None), access_log_group (None when logging is
    off), cloudwatch_role (the account-wide role when logging is "create-role", else None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        timeout_seconds: int = 29,
        throttle_rate: float = 2.0,
        throttle_burst: int = 5,
        daily_quota: int = 1000,
        stage_throttle_rate: float = 10.0,
        stage_throttle_burst: int = 20,
        authorizer_concurrency: int = 10,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        stage_name: str = "v1",
        description: str = "Models on SageMaker endpoints",
        logging: str = "account-role",
        tracing: bool = False,
        cors_origins: tuple[str, ...] = (),
        auth: str = "api_key",
        bearer_keys: bool = True,
        user_pool_arn: Optional[str] = None,
    ):
        super().__init__(scope, construct_id)
        problems = []
        if not 1 <= timeout_seconds <= 29:
            problems.append("timeout_seconds must be from 1 to 29")
        if min(throttle_rate, stage_throttle_rate) <= 0 or min(throttle_burst, stage_throttle_burst, daily_quota) < 1:
            problems.append("throttle_rate, throttle_burst, stage_throttle_rate, stage_throttle_burst and daily_quota "
                            "must be positive")
        elif auth == "api_key" and (stage_throttle_rate <= throttle_rate or stage_throttle_burst <= throttle_burst):
            problems.append("stage_throttle_rate and stage_throttle_burst must be above the key's throttle_rate and "
                            "throttle_burst (every caller shares the stage's)")
        if logging not in ("account-role", "create-role", "off"):
            problems.append("logging must be account-role, create-role or off")
        problems += _cors.origin_problems(cors_origins)
        if auth not in AUTH_MODES:
            problems.append(f"auth must be one of {', '.join(AUTH_MODES)}")
        if (auth == "cognito") != (user_pool_arn is not None):
            problems.append("user_pool_arn goes with auth=cognito, and auth=cognito needs it")
        if problems:
            raise ValueError(f"ModelRestApi {construct_id}: " + "; ".join(problems))
        self._timeout = Duration.seconds(timeout_seconds)
        self.auth = auth
        self._integrations: dict[str, apigw.LambdaIntegration] = {}
        self._keyless: list[apigw.Method] = []  # the methods that need no key (add_document)
        self.fallback_methods: list[apigw.Method] = []

        self.access_log_group = None if logging == "off" else logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        stack_name = Stack.of(self).stack_name
        access_logs = {} if self.access_log_group is None else dict(
            access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
            access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                resource_path=True, response_length=True, status=True, user=False,
            ),
        )
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=stack_name,
            description=description,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # With bearer_keys the key authorizer hands API Gateway the key (x-api-key or Bearer); else the header.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER if auth == "api_key" and bearer_keys
            else apigw.ApiKeySourceType.HEADER,
            binary_media_types=list(BINARY_MEDIA_TYPES),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=apigw.Cors.ALL_ORIGINS if _cors.ANY in cors_origins else list(cors_origins),
                allow_methods=list(_cors.ALLOW_METHODS), allow_headers=list(_cors.ALLOW_HEADERS),
                expose_headers=list(_cors.EXPOSE_HEADERS), max_age=Duration.seconds(_cors.MAX_AGE_SECONDS),
            ) if cors_origins else None,
            # Not CDK's own role: it attaches an AWS-managed policy. See _account_cloudwatch_role.
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                throttling_rate_limit=stage_throttle_rate,
                throttling_burst_limit=stage_throttle_burst,
                tracing_enabled=tracing,  # X-Ray: a trace per request, through the Lambda (tracing setting)
                **access_logs,
            ),
        )
        self.cloudwatch_role = self._account_cloudwatch_role() if logging == "create-role" else None
        # The stack outputs the URLs it wants; the base URL output RestApi adds would only be noise.
        self.api.node.try_remove_child("Endpoint")
        for response_type, (status, code) in _errors.GATEWAY_ERRORS.items():
            headers = {"Content-Type": "'application/json'", **gateway_cors_headers(cors_origins)}
            if status == 429:
                headers["Retry-After"] = "'1'"
            self.api.add_gateway_response(
                f"Gateway{response_type.title().replace('_', '')}",
                type=getattr(apigw.ResponseType, _RESPONSE_TYPES.get(response_type, response_type)),
                status_code=None if response_type.startswith("DEFAULT_") else str(status),
                templates={"application/json": _errors.gateway_response_template(
                    code, _errors.KEY_MESSAGES.get(response_type) if auth == "api_key" else None)},
                response_headers=headers,
            )
        self.api_key = self.usage_plan = self.key_authorizer = self.cognito_authorizer = None
        if auth == "api_key":
            self.api_key = apigw.ApiKey(self, "ApiKey", description=f"Key of the {stack_name} model API")
            self.usage_plan = self.api.add_usage_plan(
                "UsagePlan",
                description="Throttle and daily quota of the model API key",
                throttle=apigw.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
                quota=apigw.QuotaSettings(limit=daily_quota, period=apigw.Period.DAY),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
            )
            self.usage_plan.add_api_key(self.api_key)
            if bearer_keys:
                self.key_authorizer = KeyAuthorizer(self, "KeyAuthorizer", log_retention=log_retention,
                                                    tracing=tracing, reserved_concurrency=authorizer_concurrency)
        elif auth == "cognito":
            # No authorization scopes on the methods: the authorizer then takes the pool's ID tokens (Amazon Cognito
            # Developer Guide, "Accessing resources with API Gateway after sign-in"; access tokens need scopes).
            self.cognito_authorizer = apigw.CognitoUserPoolsAuthorizer(
                self, "CognitoAuthorizer",
                cognito_user_pools=[cognito.UserPool.from_user_pool_arn(self, "UserPool", user_pool_arn)])

    def _account_cloudwatch_role(self) -> iam.Role:
        """The role API Gateway writes every log of this account and region with, and the account setting naming
        it (AWS::ApiGateway::Account, one per account and region). Both stay after `cdk destroy`: deleting the
        role would break logging of every other API that now relies on the setting. The stage waits for both."""
        stack = Stack.of(self)
        role = iam.Role(
            self, "AccountCloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway's account-wide CloudWatch Logs role (kept on destroy: every API of this "
                        "account and region logs through it)",
            inline_policies={"PushToCloudWatchLogs": iam.PolicyDocument(statements=[iam.PolicyStatement(
                # The actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs. Every log group of the region:
                # the role is account-wide and serves the execution and access logs of every API there.
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
                         "logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents",
                         "logs:PutLogEvents"],
                resources=[stack.format_arn(service="logs", resource="log-group", resource_name="*",
                                            arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            )])},
        )
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "AccountSetting", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        self.api.deployment_stage.node.add_dependency(account)
        return role

    def add_route(self, path: str, method: str, function: lambda_.IFunction,
                  stream_seconds: Optional[int] = None) -> apigw.Method:
        """method on path, proxied to function (which validates the request), behind the API's auth.
        stream_seconds: the function streams its answers (ModelFunction streaming): API Gateway invokes it with
        InvokeWithResponseStream and passes the answer on as it comes (responseTransferMode STREAM), for up to this
        many seconds, not 29 (API Gateway Developer Guide, "Set up a Lambda proxy integration with payload response
        streaming": up to 15 minutes; an idle stream ends after 5 on a regional endpoint)."""
        if stream_seconds is not None and not 30 <= stream_seconds <= 900:
            raise ValueError(f"ModelRestApi: stream_seconds must be from 30 to 900 (got {stream_seconds})")
        resource = self.api.root.resource_for_path(path)
        return resource.add_method(method, self._integration(function, stream_seconds), **self._method_auth())

    def _method_auth(self) -> dict:
        if self.auth == "iam":
            return {"authorization_type": apigw.AuthorizationType.IAM}
        if self.auth == "cognito":
            return {"authorization_type": apigw.AuthorizationType.COGNITO, "authorizer": self.cognito_authorizer}
        authorizer = self.key_authorizer.authorizer if self.key_authorizer else None
        return {"api_key_required": True, **({"authorizer": authorizer} if authorizer else {})}

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """auth=iam: lets grantee call every route of the stage (execute-api:Invoke on this API's stage only)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"],
            resource_arns=[self.api.arn_for_execute_api(method="*", path="/*",
                                                        stage=self.api.deployment_stage.stage_name)])

    def add_document(self, path: str, document: str) -> apigw.Method:
        """GET path answers `document` (JSON) from the gateway itself: a mock integration, no Lambda, no API key
        (it describes the routes; it holds nothing a key protects). The integration response is a VTL template,
        so every $ and # of the document is written as a variable set to that character: the template renders the
        document's exact bytes (checked with airspeed, a Python Velocity engine, in the tests)."""
        method = self.api.root.resource_for_path(path).add_method("GET", apigw.MockIntegration(
            request_templates={"application/json": '{"statusCode": 200}'},
            passthrough_behavior=apigw.PassthroughBehavior.NEVER,
            integration_responses=[apigw.IntegrationResponse(
                status_code="200", response_templates={"application/json": vtl_literal(document)})],
        ), method_responses=[apigw.MethodResponse(status_code="200")], api_key_required=False)
        self._keyless.append(method)
        return method

    def add_fallback(self, function: lambda_.IFunction) -> list[apigw.Method]:
        """ANY on every resource and on /{proxy+} (each path no resource has), proxied to `function`
        (UnroutedFunction: 405 with the path's methods, or 404 naming the routes), behind the API's auth like every
        route: a valid key gets an answer that says what exists, and a request without one stays 401/403. A
        method a resource has wins over its ANY, and a resource over /{proxy+} (API Gateway Developer Guide, "Set
        up a proxy integration with a proxy resource"). Call it after the last route. One permission lets the API
        invoke the function from any of these methods."""
        # One permission for the whole API (scope_permission_to_method=False), so no test-invoke one to refuse.
        integration = apigw.LambdaIntegration(function, proxy=True, timeout=self._timeout,
                                              scope_permission_to_method=False)
        resources = [self.api.root]
        for resource in resources:  # grows while walked: every resource of the tree, the root first
            resources += [child for child in resource.node.children if isinstance(child, apigw.Resource)]
        resources.append(self.api.root.add_resource("{proxy+}"))
        for resource in resources:
            self.fallback_methods.append(resource.add_method("ANY", integration, **self._method_auth()))
        return self.fallback_methods

    def limit_keyless(self, rate: float, burst: int) -> None:
        """Give every method that needs no key (GET of add_document, the CORS preflight OPTIONS of each resource) a
        throttle of its own in the stage's method settings, below the stage's: anonymous requests then use up only
        that (the stage-wide setting is per method: API Gateway Developer Guide, "Throttle requests to your REST
        APIs"). Call it after the last method is added. A MethodSetting's ResourcePath is "/" then the path with
        every / as ~1 ("/~1openapi.json"), the root "/": as CDK's own parseMethodOptionsPath writes it."""
        keyless = self._keyless + [m for m in self.api.methods if m.http_method == "OPTIONS"]
        stage = self.api.deployment_stage.node.default_child
        stage.method_settings = list(stage.method_settings or []) + [
            apigw.CfnStage.MethodSettingProperty(
                http_method=method.http_method,
                resource_path="/" + method.resource.path.replace("/", "~1") if method.resource.path != "/" else "/",
                throttling_rate_limit=rate, throttling_burst_limit=burst)
            for method in keyless]

    def add_domain(self, domain_name: str, certificate_arn: str, hosted_zone_id: Optional[str] = None):
        """Serve the stage at https://<domain_name>/ (a regional custom domain, TLS 1.2, the certificate an ACM
        certificate of the API's region). With hosted_zone_id, an alias A record in that Route 53 zone points the
        name at it; without, point your DNS at domain.domain_name_alias_domain_name. Returns (domain, record)."""
        domain = apigw.DomainName(
            self, "Domain", domain_name=domain_name,
            certificate=acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn),
            endpoint_type=apigw.EndpointType.REGIONAL, security_policy=apigw.SecurityPolicy.TLS_1_2,
            mapping=self.api)
        record = route53.CfnRecordSet(
            self, "DomainRecord", hosted_zone_id=hosted_zone_id, name=domain_name, type="A",
            alias_target=route53.CfnRecordSet.AliasTargetProperty(
                dns_name=domain.domain_name_alias_domain_name,
                hosted_zone_id=domain.domain_name_alias_hosted_zone_id)) if hosted_zone_id else None
        return domain, record

    def url_for(self, path: str) -> str:
        return self.api.url_for_path(path)

    def _integration(self, function: lambda_.IFunction, stream_seconds: Optional[int] = None) \
            -> apigw.LambdaIntegration:
        key = function.node.path
        if key not in self._integrations:
            # No test-invoke permission: halves the function's resource policy; the console's test button is all
            # it would serve.
            streamed = {"response_transfer_mode": apigw.ResponseTransferMode.STREAM,
                        "timeout": Duration.seconds(stream_seconds)} if stream_seconds else {"timeout": self._timeout}
            self._integrations[key] = apigw.LambdaIntegration(function, proxy=True, allow_test_invoke=False,
                                                              **streamed)
        return self._integrations[key]


def vtl_literal(text: str) -> str:
    """A Velocity template that renders exactly `text`: $ and # (references, directives, ## comments) become
    ${D} and ${H}, variables set to those characters first."""
    escaped = text.replace("$", "${D}").replace("#", "${H}")  # ${D} has no #: the order is safe
    return "#set($D = '$')#set($H = '#')" + escaped


def static_cors_headers(origins: tuple[str, ...]) -> dict[str, str]:
    """The CORS headers an answer that cannot see the request may carry (AWS WAF's own 429): for one origin or
    "*", that origin; for several, none (a static answer cannot name the request's origin back)."""
    if len(origins) != 1:
        return {}
    return {"Access-Control-Allow-Origin": origins[0], "Access-Control-Expose-Headers": ", ".join(_cors.EXPOSE_HEADERS)}


def gateway_cors_headers(origins: tuple[str, ...]) -> dict[str, str]:
    """CORS headers of the gateway's own answers (bad key, unknown route, throttled, ...), as response parameters:
    a static origin for one origin or "*"; for several, the request's own Origin (a gateway response cannot check
    it against the list: it carries only the error's code and message). Local mode answers the same
    (local/gateway.py)."""
    if not origins:
        return {}
    headers = {"Access-Control-Expose-Headers": f"'{', '.join(_cors.EXPOSE_HEADERS)}'"}
    if len(origins) == 1:
        headers["Access-Control-Allow-Origin"] = f"'{origins[0]}'"
    else:
        headers.update({"Access-Control-Allow-Origin": "method.request.header.Origin", "Vary": "'Origin'"})
    return headers

