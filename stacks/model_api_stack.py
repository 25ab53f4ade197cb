"""The one stack of the app: per model an endpoint (unless it exists already) and a Lambda, one REST API in front,
an image bucket when a model makes images, and what a user needs to call it."""

from __future__ import annotations

import re

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Aws,
    CfnOutput,
    CfnRule,
    CfnRuleAssertion,
    Fn,
    SecretValue,
    Stack,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct
from model_api import openapi as _openapi
from model_api import routes as _routes
from model_api.kinds import KINDS

from deployment.container_images import ContainerImage
from deployment.hosting import BATCH_PREFIX, HOSTING_MODES, JOB_PREFIX, hosting_of
from deployment.model_catalog import S3_URI, ModelSpec, gpu_count, pascal
from deployment.settings import LOG_RETENTION_DAYS, Settings
from stacks.api_firewall import ApiFirewall
from stacks.batch_model import BatchModel
from stacks.cost_budget import SageMakerBudget
from stacks.image_bucket import ImageBucket
from stacks.model_artifact import ModelArtifact
from stacks.model_endpoint import ModelEndpoint
from stacks.model_function import ModelFunction
from stacks.monitoring import ModelApiMonitoring, WatchedModel
from stacks.private_network import PrivateNetwork
from stacks.rest_api import ModelRestApi, static_cors_headers
from stacks.shared_endpoint import ModelComponent, SharedEndpoint
from stacks.unrouted_function import UnroutedFunction

# Where a model whose code downloads its weights puts them: on SageMaker hosting the instance's large storage (the
# ML storage volume, or the NVMe instance store on g4dn/g5/... types) is mounted at /tmp, while the container's own
# root volume holds only tens of GB (sagemaker-huggingface-inference-toolkit issues 78 and 115; "the volume is
# typically mounted to /tmp/ while there is a separate volume mounted to /": tiiuae/falcon-40b-instruct discussion
# 16 on the Hugging Face Hub, about an ml.g5.24xlarge endpoint). Unverified here: the first deploy's logs
# (hub_files logs the target folder and bytes) will show it.
MODEL_DOWNLOAD_DIR = "/tmp/model-weights"


SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


class ModelApiStack(Stack):
    """Attributes: settings, images (ImageBucket or None), endpoints, components, functions and batch_models (by
    model name), shared (SharedEndpoint or None), api, monitoring."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs):
        super().__init__(scope, construct_id, description="SageMaker Model API: models behind a REST API", **kwargs)
        self.settings = settings
        retention = _retention(settings)
        key = kms.Key.from_key_arn(self, "ImageKey", settings.kms_key_arn) if settings.kms_key_arn else None
        hosts_jobs = any(_takes_jobs(m) for m in settings.catalog)
        takes_batches = any(m.batch for m in settings.catalog)
        needs_bucket = hosts_jobs or takes_batches or any(settings.stores_images(m) for m in settings.catalog)
        self.network = PrivateNetwork(
            self, "Network", vpc_id=settings.vpc_id, subnet_ids=settings.subnet_id_list,
            route_table_ids=settings.route_table_id_list, endpoints=settings.vpc_endpoints,
            interface_services=settings.created_interface_services, log_retention=retention,
            restrict_policies=settings.restricts_endpoints,
            # S3 from the VPC: the bucket, and model artifacts (our code's, or an s3:// source).
            s3_endpoint="s3" not in settings.skipped_endpoints and (needs_bucket or any(
                m.code or m.source_type == "s3" for m in settings.catalog if m.existing_endpoint is None)),
        ) if settings.in_vpc else None
        model_placement = self.network.model_placement if self.network else None
        self._model_placement = model_placement
        self.images = None
        self._sources: dict[str, tuple] = {}
        if needs_bucket:
            # One bucket for images, async jobs and batch jobs: all expire after image_expiry_days, under their own
            # prefixes.
            self.images = ImageBucket(self, "Images", expiry_days=settings.image_expiry_days, encryption_key=key,
                                      job_prefix=JOB_PREFIX if hosts_jobs else None,
                                      batch_prefix=BATCH_PREFIX if takes_batches else None,
                                      retain=settings.retain_bucket, log_retention=retention)
        catalog = settings.model_infos()
        self.endpoints: dict[str, ModelEndpoint] = {}
        self.functions: dict[str, ModelFunction] = {}
        self.shared = None
        shared_models = [m for m in settings.catalog if m.hosting == "shared"]
        if shared_models:
            first = shared_models[0]
            fleet = settings.shared_fleet
            self.shared = SharedEndpoint(
                self, "Shared", instance_type=first.instance_type, instance_count=fleet.initial,
                max_instance_count=fleet.maximum, scale_to_zero=fleet.to_zero,
                endpoint_name=settings.shared_endpoint_name,
                volume_kms_key_arn=None if first.nvme else settings.kms_key_arn, log_retention=retention,
                placement=model_placement, network_isolation=first.network_isolation)
        self.components: dict[str, ModelComponent] = {}
        for model in settings.catalog:
            endpoint_name = settings.endpoint_name(model)
            endpoint = None
            if model.hosting == "shared":
                endpoint = self.components[model.name] = self._component(model, settings.component_name(model))
            elif model.existing_endpoint is None:
                endpoint = self.endpoints[model.name] = self._endpoint(model, endpoint_name, retention)
            self.functions[model.name] = ModelFunction(
                self, f"{pascal(model.name)}Function",
                model_name=model.name,
                # An endpoint made elsewhere: its ARN in lowercase, as SageMaker writes it (IAM compares exactly).
                endpoint_arn=None if endpoint else self.format_arn(service="sagemaker", resource="endpoint",
                                                                   resource_name=endpoint_name.lower()),
                environment=settings.function_environment(model),
                images=self.images if settings.stores_images(model) else None,
                jobs=self.images if _takes_jobs(model) else None,
                timeout_seconds=settings.function_timeout_seconds(model),
                streaming=model.streaming,
                log_retention=retention,
                log_level=settings.log_level,
                tracing=settings.tracing,
                placement=self.network.function_placement if self.network else None,
                snapstart=settings.snapstart,
            )
            if endpoint is not None:
                endpoint.grant_invoke(self.functions[model.name].role)
        self.batch_models: dict[str, BatchModel] = {
            m.name: self._batch_model(m) for m in settings.catalog if m.batch}
        self.api = ModelRestApi(
            self, "Api",
            timeout_seconds=settings.api_timeout_seconds,
            throttle_rate=settings.throttle_rate,
            throttle_burst=settings.throttle_burst,
            daily_quota=settings.daily_quota,
            stage_throttle_rate=settings.stage_throttle_rate,
            stage_throttle_burst=settings.stage_throttle_burst,
            authorizer_concurrency=settings.authorizer_concurrency,
            log_retention=retention,
            logging=settings.api_logging,
            tracing=settings.tracing,
            cors_origins=settings.cors_origin_list,
            auth=settings.auth,
            bearer_keys=settings.bearer_keys,
            user_pool_arn=settings.cognito_user_pool_arn,
        )
        # auth=iam: the policy to attach to the roles and users that may call the API.
        self.invoke_policy = None
        if settings.auth == "iam":
            self.invoke_policy = iam.ManagedPolicy(
                self, "InvokePolicy", description=f"Call the {settings.stack_name} model API (auth=iam)")
            self.api.grant_invoke(self.invoke_policy)
        for route in _routes.routes(catalog):
            streams = settings.model(route.model).streaming
            self.api.add_route(route.path, route.method, self.functions[route.model].invocable,
                               stream_seconds=settings.stream_timeout_seconds if streams else None)
        self.domain, self.domain_record = self.api.add_domain(
            settings.domain_name, settings.certificate_arn, settings.hosted_zone_id) if settings.domain_name \
            else (None, None)
        self.firewall = ApiFirewall(self, "Firewall", stage=self.api.api.deployment_stage,
                                    rate_limit=settings.waf_rate_limit,
                                    metric_prefix=settings.stack_name.replace("-", ""),
                                    response_headers=static_cors_headers(settings.cors_origin_list)) \
            if settings.waf else None
        # The OpenAPI document of these routes and schemas, served by the gateway (and written beside the template
        # at synth: app.py).
        self.openapi = settings.openapi_json()
        self.openapi_method = self.api.add_document(_openapi.OPENAPI_PATH, self.openapi)
        # Every other path and method: 404 naming the routes, 405 with the path's methods (not API Gateway's
        # "Missing Authentication Token"); then the keyless methods' own throttle, once every method exists.
        self.unrouted = UnroutedFunction(self, "Unrouted", environment=settings.unrouted_environment(),
                                         log_retention=retention, tracing=settings.tracing)
        self.api.add_fallback(self.unrouted.function)
        self.api.limit_keyless(settings.keyless_throttle_rate, settings.keyless_throttle_burst)
        self.monitoring = ModelApiMonitoring(
            self, "Monitoring", api=self.api.api, metrics_namespace=settings.metrics_namespace,
            thresholds=settings.alarm_thresholds, alarm_email=settings.alarm_email,
            dashboard_name=f"{settings.stack_name}-model-api",
            models=[WatchedModel(
                m.name, self.functions[m.name].function, self.endpoints.get(m.name), self.components.get(m.name),
                # What one call to the model may take: the invoke read timeout, an async job's own timeout, or
                # a streaming model's.
                request_seconds=float(settings.model_request_seconds(m)),
                gpus=gpu_count(m.instance_type) if m.gpu and m.existing_endpoint is None else 0,
                always_on=m.hosting == "realtime" and m.existing_endpoint is None)
                for m in settings.catalog], shared=self.shared)
        self.budget = SageMakerBudget(self, "Budget", monthly_usd=settings.monthly_budget_usd,
                                      email=settings.alarm_email, budget_name=f"{settings.stack_name}-sagemaker") \
            if settings.monthly_budget_usd is not None else None
        if settings.kms_key_arn and settings.region is None:
            self._key_in_stack_region(settings.kms_key_arn)
        if self.network is not None:
            self._allow_through_network()
        self._outputs(catalog)
        self._acknowledge_nag_findings()

    def _model_source(self, model: ModelSpec) -> tuple:
        """(image, model data URL, model data ARN) of a model this stack hosts; made once per model (its endpoint
        and its batch model share the artifact)."""
        if model.name not in self._sources:
            self._sources[model.name] = self._new_model_source(model)
        return self._sources[model.name]

    def _new_model_source(self, model: ModelSpec) -> tuple:
        artifact = ModelArtifact(self, f"{pascal(model.name)}Code", code_dir=model.code_dir) if model.code else None
        data_url = data_arn = None
        if artifact is not None:
            data_url, data_arn = artifact.s3_url, artifact.object_arn
        elif model.source_type == "s3":
            match = S3_URI.match(model.source)
            data_url = model.source
            data_arn = self.format_arn(service="s3", region="", account="",
                                       resource=match["bucket"], resource_name=match["key"])
        if model.container == "tgi":
            image = ContainerImage.text_generation_inference(self)
        elif model.container.startswith("hf-inference"):
            gpu = model.container == "hf-inference-gpu" or (model.container == "hf-inference" and model.gpu)
            image = ContainerImage.hugging_face_inference(self, gpu=gpu)
        else:
            image = ContainerImage.from_uri(model.container)
        return image, data_url, data_arn

    def _component(self, model: ModelSpec, component_name: str) -> ModelComponent:
        image, data_url, data_arn = self._model_source(model)
        return self.shared.add_component(
            pascal(model.name), component_name=component_name, image=image, hosting=hosting_of(model),
            environment=_model_environment(model, self.settings), model_data_url=data_url, model_data_arn=data_arn,
            readable_secret_arn=self._hub_token_arn() if model.code_downloads and self.settings.hub_token_secret
            else None)

    def _endpoint(self, model: ModelSpec, endpoint_name: str, retention) -> ModelEndpoint:
        image, data_url, data_arn = self._model_source(model)
        return ModelEndpoint(
            self, pascal(model.name),
            endpoint_name=endpoint_name,
            image=image,
            environment=_model_environment(model, self.settings),
            model_data_url=data_url,
            model_data_arn=data_arn,
            hosting=hosting_of(model),
            job_bucket=self.images if _takes_jobs(model) else None,
            job_model=model.name,
            # SageMaker rejects a volume key on instance types with NVMe storage (encrypted by the hardware);
            # serverless hosting has no volume.
            # none on NVMe instance types (SageMaker rejects it), nor where the mode runs no instances (no volume)
            volume_kms_key_arn=None if model.nvme or hosting_of(model).instances() is None
            else self.settings.kms_key_arn,
            log_retention=retention,
            readable_secret_arn=self._hub_token_arn() if model.code_downloads and self.settings.hub_token_secret
            else None,
            placement=self._model_placement,
            network_isolation=model.network_isolation,
        )

    def _batch_model(self, model: ModelSpec) -> BatchModel:
        image, data_url, data_arn = self._model_source(model)
        return BatchModel(
            self, f"{pascal(model.name)}Batch", image=image, bucket=self.images, model=model.name,
            job_name_prefix=self.settings.batch_job_prefix(model),
            # A line may take batch_timeout_seconds, not what one API call may.
            environment=_model_environment(model, self.settings, request_seconds=model.batch_timeout_seconds),
            model_data_url=data_url, model_data_arn=data_arn,
            readable_secret_arn=self._hub_token_arn() if model.code_downloads and self.settings.hub_token_secret
            else None, placement=self._model_placement, network_isolation=model.network_isolation)

    def _allow_through_network(self) -> None:
        """Each VPC endpoint's policy: exactly what the functions and containers in the VPC call through it."""
        network, settings = self.network, self.settings
        if self.images is not None:
            network.allow("s3", ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket",
                                 "s3:PutObject"],
                          [self.images.bucket.bucket_arn, self.images.bucket.arn_for_objects("*")])
        artifacts = [data_arn for _, _, data_arn in self._sources.values() if data_arn is not None]
        if artifacts:  # the model.tar.gz of each model: ours in the CDK asset bucket, or its s3:// source
            network.allow("s3", ["s3:GetObject"], artifacts)
        invoked = [e.endpoint_arn for e in self.endpoints.values()] + [
            arn for c in self.components.values() for arn in (c.shared.endpoint_arn, c.component_arn)] + [
            self.format_arn(service="sagemaker", resource="endpoint", resource_name=settings.endpoint_name(m).lower())
            for m in settings.catalog if m.existing_endpoint is not None]
        network.allow("sagemaker.runtime", ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"],
                      list(dict.fromkeys(invoked)))
        if self.images is not None and self.images.url_signer is not None:
            network.allow("sts", ["sts:AssumeRole"], [self.images.url_signer.role_arn])
        # Containers log to their groups under /aws/sagemaker/ (endpoints, components, transform jobs).
        network.allow("logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                               "logs:PutLogEvents"],
                      [self.format_arn(service="logs", resource="log-group", resource_name="/aws/sagemaker/*",
                                       arn_format=ArnFormat.COLON_RESOURCE_NAME)])
        if settings.hub_token_secret:
            network.allow("secretsmanager", ["secretsmanager:GetSecretValue"], [self._hub_token_arn()])
        # X-Ray's two actions take no resource: AWS allows only "*" for them.
        network.allow("xray", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"])

    def _hub_token_arn(self) -> str:
        """The hub token secret's ARN for IAM: as given, or with Secrets Manager's random "-XXXXXX" suffix
        matched by "-??????" when a name (or a partial ARN) was given."""
        secret = self.settings.hub_token_secret
        if secret.startswith("arn:"):
            return secret if SECRET_SUFFIX.search(secret) else secret + "-??????"
        return self.format_arn(service="secretsmanager", resource="secret", resource_name=secret + "-??????",
                               arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def _key_in_stack_region(self, key_arn: str) -> None:
        """Environment-agnostic template: refuse, before anything is created, a key of another region."""
        CfnRule(self, "KmsKeyInStackRegion", assertions=[CfnRuleAssertion(
            assert_=Fn.condition_equals(Fn.select(3, Fn.split(":", key_arn)), Aws.REGION),
            assert_description="kms_key_arn must be a key of the region the stack deploys to",
        )])

    def _outputs(self, catalog) -> None:
        CfnOutput(self, "ApiUrl", value=self.api.url_for("/"), description="Base URL of the API")
        if self.domain is not None:
            CfnOutput(self, "CustomDomainUrl", value=f"https://{self.settings.domain_name}/",
                      description="The API at your domain (the same routes, no stage in the path)")
            CfnOutput(self, "CustomDomainTarget", value=self.domain.domain_name_alias_domain_name,
                      description="Point your domain's DNS (CNAME or alias) here"
                                  + (" (done: an alias record in hosted_zone_id)" if self.domain_record else ""))
        CfnOutput(self, "OpenApiUrl", value=self.api.url_for(_openapi.OPENAPI_PATH),
                  description="The API's OpenAPI 3.1 document (no key needed)")
        CfnOutput(self, "DashboardUrl", value=self.monitoring.dashboard_url,
                  description="CloudWatch dashboard: alarms, API, Lambdas, endpoints, request metrics")
        if self.api.api_key is not None:
            key_id = self.api.api_key.key_id
            get_key = f"aws apigateway get-api-key --api-key {key_id} --include-value --query value --output text " \
                      f"--region {self.region}"
            CfnOutput(self, "ApiKeyId", value=key_id, description="Id of the API key (send its value as x-api-key"
                      + (" or as Authorization: Bearer" if self.api.key_authorizer else "") + ")")
            CfnOutput(self, "GetApiKeyCommand", value=get_key, description="Prints the API key value")
            CfnOutput(self, "UsagePlanId", value=self.api.usage_plan.usage_plan_id,
                      description="Usage plan of the key (for key rotation)")
            credentials = f"-H \"x-api-key: $({get_key})\""
        elif self.invoke_policy is not None:
            CfnOutput(self, "InvokePolicyArn", value=self.invoke_policy.managed_policy_arn,
                      description="Attach to the IAM roles and users that may call the API (auth=iam)")
            credentials = ('--aws-sigv4 "aws:amz:$AWS_REGION:execute-api" --user "$AWS_ACCESS_KEY_ID:'
                           '$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN"')
        else:
            credentials = '-H "Authorization: $ID_TOKEN"'  # a Cognito ID token of a user of the pool
        if self.network is not None:
            CfnOutput(self, "VpcId", value=self.network.vpc_id, description="VPC the endpoints and Lambdas run in")
        if self.images is not None:
            CfnOutput(self, "BucketName", value=self.images.bucket.bucket_name, description="Where images go")
        if self.api.cloudwatch_role is not None:
            CfnOutput(self, "ApiGatewayCloudWatchRoleName", value=self.api.cloudwatch_role.role_name,
                      description="Account-wide API Gateway logging role this stack created; kept on destroy")
        for info in catalog:
            CfnOutput(self, f"{pascal(info.name)}Url", value=self.api.url_for(f"/models/{info.name}"),
                      description=f"The {info.kind} model {info.name}")
            CfnOutput(self, f"{pascal(info.name)}EndpointName", value=info.endpoint_name,
                      description=f"SageMaker endpoint of {info.name}")
        for name, batch in self.batch_models.items():  # what `make batch` needs (ops/batch.py)
            CfnOutput(self, f"{pascal(name)}BatchModelName", value=batch.model_name,
                      description=f"SageMaker model the batch transform jobs of {name} run on")
            CfnOutput(self, f"{pascal(name)}BatchJobPrefix", value=batch.job_name_prefix,
                      description=f"What the batch transform job names of {name} start with")
        first = catalog[0]
        action = _routes.main_action(first.kind)
        if action.name == "images":  # the output of the app's first version, kept for the scripts that read it
            CfnOutput(self, "ImagesUrl", value=self.api.url_for(action.short_path),
                      description="POST or GET this URL")
        CfnOutput(
            self, "CurlExample",
            value=f"curl -s -X POST '{self.api.url_for(action.short_path)}' "
                  f"{credentials} -H 'Content-Type: application/json' "
                  f"-d '{action.example}'",
            description=f"Calls {first.name}",
        )

    def _acknowledge_nag_findings(self) -> None:
        """cdk-nag AwsSolutions findings that are deliberate, each with the reason."""
        api = self.api.api
        acks = [
            (api, "AwsSolutions-APIG3", "WAF costs at least ~$6/month per web ACL; API key, usage-plan throttling "
             "and a daily quota already bound what any caller can spend on the GPU."),
            (api, "AwsSolutions-APIG2", "Every request is validated by its Lambda against the same schema, which "
             "names every problem for every content type and refuses duplicate keys; API Gateway's validator would "
             "answer application/json clients only 'Invalid request body' (its gateway responses cannot escape the "
             "detail into JSON) and could resolve duplicate keys differently from the Lambda."),
            (api, "AwsSolutions-APIG4", "auth=api_key: access is controlled by the API key and its usage plan "
             "(read by the key authorizer with bearer_keys), the product's default auth model; auth=iam and "
             "auth=cognito are the deployer's options."),
            (api, "AwsSolutions-COG4", "auth=api_key or iam: callers authenticate with the API key or SigV4, "
             "not a Cognito user pool (auth=cognito is the option that uses one)."),
            (api, "AwsSolutions-APIG6", "Execution logs go to a log group API Gateway creates itself "
             "(API-Gateway-Execution-Logs_<api id>/<stage>), which no stack owns and cdk destroy leaves behind; "
             "access logging records every request in the stack's own group (api_logging: it needs the same "
             "account-wide CloudWatch role as execution logging would)."),
        ]
        if self.settings.auth != "api_key":  # IAM or Cognito authorizes every route: only the document is open
            acks = [ack for ack in acks if ack[1] != "AwsSolutions-APIG4"]
            acks.append((self.openapi_method, "AwsSolutions-APIG4", "GET /openapi.json is public by design: it "
                         "describes the routes and their bounds, holds no data and runs no Lambda (a mock "
                         "integration); every route that reaches a model is authorized."))
        if self.settings.auth == "cognito":
            acks = [ack for ack in acks if ack[1] != "AwsSolutions-COG4"]
            acks.append((self.openapi_method, "AwsSolutions-COG4", "GET /openapi.json is public by design: it "
                         "describes the routes and holds no data; every route that reaches a model takes the "
                         "user pool's tokens."))
        if self.invoke_policy is not None:
            acks.append((self.invoke_policy, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:"
                         f"<AWS::Region>:<AWS::AccountId>:<{self.get_logical_id(api.node.default_child)}>/"
                         f"<{self.get_logical_id(api.deployment_stage.node.default_child)}>/*/*]",
                         "auth=iam: whoever holds this policy may call every route of this API's one stage "
                         "(the methods and paths are the API's own routes); attach it only to callers of the API."))
        if self.firewall is not None:  # waf=true: the stage has its web ACL, nothing to acknowledge
            acks = [ack for ack in acks if ack[1] != "AwsSolutions-APIG3"]
        if self.api.access_log_group is None:
            acks.append((api, "AwsSolutions-APIG1", "Access logging is off because the deployer chose "
                         "api_logging=off: it needs the account-wide API Gateway CloudWatch role, which this account "
                         "does not have and the deployer did not let the stack create. The Lambdas still log every "
                         "request."))
        if self.api.cloudwatch_role is not None:
            acks.append((self.api.cloudwatch_role, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:"
                         "<AWS::Region>:<AWS::AccountId>:log-group:*]", "API Gateway's account-wide logging role "
                         "writes the logs of every API in this account and region, whose log groups no stack can "
                         "list in advance (the same scope as AWS's AmazonAPIGatewayPushToCloudWatchLogs)."))
        roles = [endpoint.role for endpoint in self.endpoints.values()] + ([self.shared.role] if self.shared else [])
        for role in roles:
            acks.append((role, "AwsSolutions-IAM5[Resource::*]", "Only ecr:GetAuthorizationToken and "
                         "cloudwatch:PutMetricData, which AWS allows on '*' alone; the metrics one is scoped by a "
                         "namespace condition."))
        if self.images is not None:
            bucket_id = self.get_logical_id(self.images.bucket.node.default_child)
            acks.append((self.images.bucket, "AwsSolutions-S1", "Objects are short-lived generated images written "
                         "only by the Lambda; every request is already in the API access log. A log bucket would "
                         "outlive destroy."))
            for name, function in self.functions.items():
                if self.settings.stores_images(self.settings.model(name)):
                    acks.append((function.role, f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/"
                                 f"{self.images.key_prefix}*]", "Image keys are uuid4s made per request, so the "
                                 "grant must cover the images/ prefix; it is the only prefix the Lambda can touch."))
        if self.network is not None:
            sagemaker_roles = roles + [b.role for b in self.batch_models.values()]
            for role in sagemaker_roles:
                acks.append((role, "AwsSolutions-IAM5[Resource::*]", "Only actions AWS allows on '*' alone: ECR "
                             "login, metrics scoped by namespace, and the network-interface actions the Developer "
                             "Guide lists on '*' for containers in a VPC (SageMaker makes their interfaces)."))
                for kind in ("network-interface", "subnet", "security-group"):
                    acks.append((role, f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:"
                                 f"<AWS::AccountId>:{kind}/*]", "SageMaker creates and deletes its containers' "
                                 "network interfaces with this role, named by EC2 when made; the ec2:Vpc condition "
                                 "holds them to this deployment's VPC."))
            for function in self.functions.values():
                acks.append((function.role, "AwsSolutions-IAM5[Resource::*]", "The network-interface actions of "
                             "AWSLambdaVPCAccessExecutionRole, on '*' as there: Lambda makes the function's "
                             "interfaces in the VPC with them (inline instead of the managed policy)."))
        if self.settings.tracing:
            traced = [function.role for function in self.functions.values()] + [self.unrouted.role] + (
                [self.api.key_authorizer.role] if self.api.key_authorizer else [])
            for role in traced:
                acks.append((role, "AwsSolutions-IAM5[Resource::*]", "tracing=true: X-Ray's "
                             "xray:PutTraceSegments and xray:PutTelemetryRecords take no resource, AWS allows only "
                             "'*' for them (Lambda adds exactly these two for active tracing)."))
        for scope, rule, reason in acks:
            Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def _retention(settings: Settings) -> logs.RetentionDays:
    # RetentionDays lists CloudWatch's allowed periods in the order of LOG_RETENTION_DAYS (INFINITE last).
    finite = [r for r in logs.RetentionDays if r is not logs.RetentionDays.INFINITE]
    return dict(zip(LOG_RETENTION_DAYS, finite))[settings.log_retention_days]


def _takes_jobs(model: ModelSpec) -> bool:
    """The model's hosting mode runs jobs from the bucket (async)."""
    return model.hosting in HOSTING_MODES and HOSTING_MODES[model.hosting].takes_jobs


def _model_environment(model: ModelSpec, settings: Settings, request_seconds: int | None = None) -> dict[str, str]:
    """The container environment of a model: what its container needs to find, load and bound the model.
    request_seconds: what one request may take on the model; default its hosting's bound (or the API call's)."""
    environment: dict[str, str] = {}
    request_seconds = request_seconds or hosting_of(model).request_seconds
    token_in_environment = bool(settings.hub_token_secret and model.hub_id)
    if model.container == "tgi":
        # TGI loads HF_MODEL_ID from the Hub, or from the unpacked model.tar.gz.
        environment["HF_MODEL_ID"] = model.hub_id or "/opt/ml/model"
        environment["SM_NUM_GPUS"] = str(gpu_count(model.instance_type))
        if model.max_input_tokens:
            environment["MAX_INPUT_TOKENS"] = str(model.max_input_tokens)
        if model.max_total_tokens:
            environment["MAX_TOTAL_TOKENS"] = str(model.max_total_tokens)
    else:
        if model.code_downloads:
            # Not HF_MODEL_ID: with it the toolkit downloads the whole repository to the root volume before the
            # server starts. The code's model_fn fetches only what the pipeline needs (hub_files.py), to /tmp.
            environment.update({"MODEL_HUB_ID": model.hub_id, "MODEL_DOWNLOAD_DIR": MODEL_DOWNLOAD_DIR})
            if settings.hub_token_secret:
                # model_fn reads the secret with the execution role (ReadHubToken), so DescribeModel shows no token.
                environment["HF_TOKEN_SECRET_ID"] = settings.hub_token_secret
                if settings.hub_token_field:
                    environment["HF_TOKEN_SECRET_FIELD"] = settings.hub_token_field
                token_in_environment = False
        elif model.hub_id:
            environment["HF_MODEL_ID"] = model.hub_id
        if model.task:
            environment["HF_TASK"] = model.task
        if model.code:
            environment["SAGEMAKER_PROGRAM"] = "inference.py"
        # Requests hold the accelerator for seconds: one worker, no interleaving.
        environment["SAGEMAKER_MODEL_SERVER_WORKERS"] = "1"
        # multi-model-server 1.1.11 (the DLC's) reads SAGEMAKER_MODEL_SERVER_TIMEOUT in MINUTES (default 60: an
        # hour) and applies it to loading the model as well as to each request (ConfigManager.
        # getDefaultResponseTimeoutSeconds, WorkerThread.runWorker). The seconds variant, set to the startup
        # timeout, still lets the model load (downloads included) and frees a hung worker 3x sooner than the
        # default; each request is bounded far tighter by the inference code itself (REQUEST_DEADLINE_SECONDS).
        # An async job may run up to job_timeout_seconds: the server must not cut it off first.
        environment["SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"] = str(
            max(model.startup_timeout_seconds, request_seconds or 0))
    kind = KINDS[model.kind]
    if kind.container_environment is not None:  # our inference code's bounds, from the repo or inside an s3 artifact
        environment.update(kind.container_environment(
            settings, model, request_seconds or settings.model_request_seconds(model) + 1))
    if model.revision:
        environment["MODEL_HUB_REVISION" if model.code_downloads else "HF_MODEL_REVISION"] = model.revision
    if model.allow_pickle_weights:  # our inference code loads safetensors only unless this says otherwise
        environment["ALLOW_PICKLE_WEIGHTS"] = "true"
    if token_in_environment:
        # The container reads the token from its environment (TGI, the toolkit's own download): a CloudFormation
        # dynamic reference keeps it out of the template, but DescribeModel shows it (docs/security.md).
        # With hub_token_field, {{resolve:secretsmanager:<id>:SecretString:<field>}}: the token alone, never a JSON
        # secret's other keys (CloudFormation, "Use dynamic references": json-key).
        token = SecretValue.secrets_manager(settings.hub_token_secret,
                                            json_field=settings.hub_token_field).unsafe_unwrap()
        environment["HF_API_TOKEN"] = token
        environment["HF_TOKEN"] = token
    environment.update(model.environment)
    return environment
