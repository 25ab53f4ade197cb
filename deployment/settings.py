"""Every setting of a deployment, typed, with its default and its checks, in one place.

Read from CDK context: `cdk.json` or `-c name=value` (values from the command line arrive as text and are converted
to the field's type). A bad setting never reaches CloudFormation: `Settings.from_context` raises SettingsError with
one message that lists every problem at once.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from model_api import cors as _cors
from model_api import kinds as _kinds
from model_api import openapi as _openapi
from model_api import routes as _routes
from model_api import schema as _schema
from model_api import text as _text
from model_api.kinds import text_to_image as _images

from deployment.alarm_thresholds import EMAIL, AlarmThresholds
from deployment.container_images import repository_regions
from deployment.hosting import HOSTING_MODES, SharedFleet, added_options, hosting_of, shared_fit_problems
from deployment.model_catalog import FIELD_ALIASES, OVERRIDABLE, PRESETS, ModelSpec, gpu_count, vcpus
from deployment.service_regions import missing_feature

ImageLimits = _schema.ImageLimits
TextLimits = _schema.TextLimits
MAX_URL_TTL_SECONDS = _images.MAX_URL_TTL_SECONDS
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$")
# Single-Region keys are UUIDs; multi-Region keys are "mrk-" and 32 hex digits.
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):\d{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f-]{36})$")
SECRET_ID = re.compile(r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[\w/+=.@-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# The Lambda needs this long to store and presign after the model answers (S3 PUTs with retries).
STORE_BUDGET_SECONDS = 6
# SageMaker's limit on one real-time invocation: "A customer's model containers must respond to requests within 60
# seconds" (SageMaker API Reference, InvokeEndpoint). What a streaming model's image request may take at most, and
# how long its function waits on one read from the endpoint.
SAGEMAKER_INVOKE_SECONDS = 60
# How API access logs get the account's API Gateway CloudWatch Logs role (needed by access and execution logging
# alike; unset in every new account and region, where the stage then fails to create):
#   account-role: use the role the account already has (make preflight checks it and says how to set one);
#   create-role: the stack creates the role and sets the account-wide setting (both outlive cdk destroy, see docs/deploy.md);
#   off: no access logs, nothing account-wide needed.
API_LOGGING = ("account-role", "create-role", "off")
# The Lambdas' application log level (Lambda's JSON log format). Each request's line, which carries its metrics
# (model_api.telemetry), is INFO: a higher level would drop the metrics with it.
LOG_LEVELS = ("INFO", "DEBUG")


def bounded_name(text: str, limit: int) -> str:
    """text in lowercase (SageMaker writes endpoint and component ARNs in lowercase and IAM compares them exactly), at
    most `limit` characters. A longer one keeps its start and ends in "-" and 8 hex digits of the whole text's
    SHA-256: two names cut at the same place (a 57-character stack name with models gpt2-cpu and gpt2-tgi) stay
    distinct, and every name that fits is unchanged."""
    text = text.lower()
    if len(text) <= limit:
        return text
    return text[:limit - 9].rstrip("-") + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]


class SettingsError(ValueError):
    """Raised with every problem of a set of settings, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


def _limit(name: str):
    default = getattr(ImageLimits(), name)
    return field(default=default, metadata={"limit": "image"})


def _text_limit(name: str):
    return field(default=getattr(TextLimits(), name), metadata={"limit": "text"})


# Private networking (stacks/private_network.py builds it; these checks run with the other settings).
VPC_MODES = ("none", "create")
DOMAIN_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")
HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
AUTH_MODES = ("api_key", "iam", "cognito")
USER_POOL_ARN = re.compile(
    r"^arn:aws[a-z-]*:cognito-idp:(?P<region>[a-z0-9-]+):\d{12}:userpool/[a-z0-9-]+_[0-9A-Za-z]+$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
ROUTE_TABLE_ID = re.compile(r"^rtb-[0-9a-f]{8,17}$")
# Interface endpoints this construct knows (com.amazonaws.<region>.<service>), with what needs each.
INTERFACE_SERVICES = {
    "sagemaker.runtime": "the Lambdas invoke the endpoints",
    "sts": "image models' Lambdas assume the URL signer role",
    "logs": "CloudWatch Logs, for whatever in the VPC writes logs itself",
    "secretsmanager": "model code reads the Hub token secret",
    "xray": "tracing=true: the Lambdas send traces",
}

# The S3 gateway endpoint, beside the interface endpoints: the names vpc_endpoints_skip takes.
GATEWAY_SERVICES = ("s3",)
# Endpoint policies: `restrict` lets only this stack's calls through its endpoints; `open` leaves AWS's default
# (full access). Each endpoint serves every workload of the VPC (an interface endpoint with private DNS answers the
# service's name for all of it; a gateway endpoint carries all S3 traffic of its route tables: AWS PrivateLink
# guide), so restricting them in a VPC of yours would cut its other workloads' STS, Logs, SageMaker and S3 calls.
ENDPOINT_POLICIES = ("restrict", "open")


def network_problems(vpc_id: Optional[str], subnet_ids: Sequence[str], route_table_ids: Sequence[str],
                     endpoints: bool, services: Sequence[str], skipped: Sequence[str] = (),
                     policies: Optional[str] = None) -> list[str]:
    problems = []
    if policies is not None and policies not in ENDPOINT_POLICIES:
        problems.append(f"vpc_endpoint_policies must be one of {', '.join(ENDPOINT_POLICIES)} (got {policies!r})")
    known = (*INTERFACE_SERVICES, *GATEWAY_SERVICES)
    problems += [f"vpc_endpoints_skip: unknown endpoint {s!r} (known: {', '.join(known)})" for s in skipped
                 if s not in known]
    if skipped and vpc_id is None:
        problems.append("vpc_endpoints_skip names endpoints a VPC of yours (vpc_id) has already; a VPC the stack "
                        "creates has none")
    if vpc_id is not None:
        if not VPC_ID.match(vpc_id):
            problems.append(f"vpc_id {vpc_id!r} is not a VPC id such as vpc-0123456789abcdef0")
        for name, ids in (("subnet_ids", subnet_ids), ("route_table_ids", route_table_ids)):
            problems += [f"{name} lists {i!r} twice" for i in sorted({i for i in ids if list(ids).count(i) > 1})]
        if len(set(subnet_ids)) < 2:  # the same subnet twice is one subnet
            problems.append("subnet_ids needs at least two subnets, in different Availability Zones (SageMaker asks "
                            "for two even for one instance)")
        problems += [f"subnet id {s!r} is not a subnet id such as subnet-0123456789abcdef0" for s in subnet_ids
                     if not SUBNET_ID.match(s)]
        problems += [f"route table id {r!r} is not a route table id such as rtb-0123456789abcdef0"
                     for r in route_table_ids if not ROUTE_TABLE_ID.match(r)]
        if endpoints and not route_table_ids:
            problems.append("route_table_ids: the subnets' route tables, for the S3 gateway endpoint (or "
                            "vpc_endpoints_skip=s3 when their route tables have one already)")
    elif subnet_ids or route_table_ids:
        problems.append("subnet_ids and route_table_ids go with vpc_id (vpc=create makes its own)")
    problems += [f"unknown interface endpoint service {s!r}" for s in services if s not in INTERFACE_SERVICES]
    return problems


@dataclass(frozen=True)
class Settings:
    # Deployment
    stack_name: str = "SageMakerModelApi"
    region: Optional[str] = None  # None: environment-agnostic template (deploys to the CLI's region)
    # Models: presets by name, comma-separated (deployment/model_catalog.py); their fields via <model>.<field>
    models: str = "stable-diffusion"
    model_specs: dict = field(default_factory=dict)  # your own models: {"name": {"kind": ..., "source": ...}}
    hub_token_secret: Optional[str] = None  # Secrets Manager secret (name or ARN) holding a Hugging Face token
    hub_token_field: Optional[str] = None  # the key of the token when that secret is a JSON object
    # Image bucket
    image_expiry_days: int = 7
    retain_bucket: bool = False
    kms_key_arn: Optional[str] = None  # customer KMS key for the bucket (and endpoint volume where allowed)
    url_ttl_seconds: int = 900
    # API
    api_timeout_seconds: int = 29
    # The longest a streaming model's answer may take (<model>.streaming): its integration timeout (API Gateway
    # allows a streamed response up to 15 minutes) and, with 5 s to spare, its function's
    stream_timeout_seconds: int = 300
    throttle_rate: float = 2.0  # per API key (its usage plan)
    throttle_burst: int = 5
    daily_quota: int = 1000
    # The stage's own limit per method, for every caller together (keyed or not): above the key's, so one key holder
    # never meets it, and the only limit with auth=iam or cognito
    stage_throttle_rate: float = 10.0
    stage_throttle_burst: int = 20
    # The routes that need no key (GET /openapi.json, CORS preflights): a small limit of their own, so anonymous
    # traffic cannot use up what key holders share
    keyless_throttle_rate: float = 1.0
    keyless_throttle_burst: int = 2
    # Lambda concurrency reserved for the key authorizer (bearer_keys): always there for callers, and never more
    # (0: none reserved; Lambda keeps 100 of the account's concurrency unreserved, make preflight checks it)
    authorizer_concurrency: int = 10
    api_logging: str = "account-role"  # see API_LOGGING
    # Custom domain: the API at https://<domain_name>/ with an ACM certificate of the stack's region, and an alias
    # record in a Route 53 hosted zone of yours if given (else point your DNS at the CustomDomainTarget output)
    domain_name: Optional[str] = None
    certificate_arn: Optional[str] = None
    hosted_zone_id: Optional[str] = None
    waf: bool = False  # an AWS WAF web ACL on the stage (stacks/api_firewall.py)
    waf_rate_limit: int = 500  # waf: requests one client IP may send in any 5 minutes
    cors_origins: Optional[str] = None  # web origins browsers may call from, comma-separated, or "*" (model_api.cors)
    # Who may call: "api_key" (the default: an API key with a usage plan), "iam" (SigV4-signed requests of IAM
    # principals granted execute-api:Invoke) or "cognito" (an ID or access token of cognito_user_pool_arn's users)
    auth: str = "api_key"
    # auth=api_key: the key may also come as `Authorization: Bearer <key>` (the openai SDK's way), through a Lambda
    # authorizer that hands it to API Gateway's own key check (lambda/authorizer.py); false: x-api-key only
    bearer_keys: bool = True
    cognito_user_pool_arn: Optional[str] = None  # auth=cognito: the existing user pool whose tokens are accepted
    # Shared hosting: instances of the one endpoint that serves every model with hosting=shared (to start with),
    # and at most (managed instance scaling adds instances as copies need room; default: shared_instances)
    shared_instances: int = 1
    shared_max_instances: Optional[int] = None
    log_retention_days: int = 30
    # Private networking (stacks/private_network.py): "none", or "create" a VPC with private subnets and no route to
    # the internet; or one of yours: vpc_id + subnet_ids (+ route_table_ids, for its S3 gateway endpoint)
    vpc: str = "none"
    vpc_id: Optional[str] = None
    subnet_ids: Optional[str] = None  # comma-separated, at least two in different Availability Zones
    route_table_ids: Optional[str] = None  # comma-separated
    vpc_endpoints: bool = True  # create the VPC endpoints (false: the VPC of vpc_id has them already)
    vpc_endpoints_skip: Optional[str] = None  # comma-separated: endpoints the VPC of vpc_id has already (s3, sts, ...)
    vpc_endpoint_policies: Optional[str] = None  # restrict | open (default: restrict for vpc=create, open for vpc_id)
    log_level: str = "INFO"  # see LOG_LEVELS
    tracing: bool = False  # X-Ray on the API stage and the Lambdas
    snapstart: bool = False  # Lambda SnapStart for the model Lambdas: cold starts resume a snapshot taken after init
    # Alarms (stacks/monitoring.py AlarmThresholds) and who is told: an email subscribed to an encrypted SNS topic
    alarm_email: Optional[str] = None
    alarm_api_5xx_percent: float = 5.0
    alarm_endpoint_5xx: int = 5
    alarm_latency_percent: float = 80.0
    alarm_gpu_memory_percent: float = 90.0
    alarm_job_age_seconds: int = 1800
    alarm_instance_hours: float = 8.0  # a model's instance-hours a day above what its minimum runs, before an alarm
    monthly_budget_usd: Optional[float] = None  # an AWS Budgets cost budget for SageMaker, telling alarm_email
    # Request limits (model_api.schema.ImageLimits): the gateway model, the handler and local mode share them
    max_prompt_chars: int = _limit("max_prompt_chars")
    min_size: int = _limit("min_size")
    max_size: int = _limit("max_size")
    default_size: int = _limit("default_size")
    max_steps: int = _limit("max_steps")
    default_steps: int = _limit("default_steps")
    max_images: int = _limit("max_images")
    max_guidance_scale: float = _limit("max_guidance_scale")
    default_guidance_scale: float = _limit("default_guidance_scale")
    # Text request limits (model_api.schema.TextLimits)
    max_input_chars: int = _text_limit("max_input_chars")
    max_new_tokens: int = _text_limit("max_new_tokens")
    default_max_new_tokens: int = _text_limit("default_max_new_tokens")
    max_batch_inputs: int = _text_limit("max_batch_inputs")
    max_messages: int = _text_limit("max_messages")
    # The resolved catalog (from models, model_specs and <model>.<field> settings); not a setting itself
    catalog: tuple = field(default=(), metadata={"derived": True})

    # ------------------------------------------------------------------------------------------------ derived

    @property
    def limits(self):
        return ImageLimits(**{f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("limit") == "image"})

    @property
    def text_limits(self):
        return TextLimits(**{f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("limit") == "text"})

    def text_limits_for(self, model: ModelSpec):
        """A model's text limits: the deployment's, with max_new_tokens bounded by the model's own token budget, so
        every value the API accepts fits (TGI answers 422 when input + max_new_tokens > MAX_TOTAL_TOKENS)."""
        limits = self.text_limits
        if model.container == "tgi" and model.max_total_tokens:
            budget = model.max_total_tokens - (model.max_input_tokens or 1)
            if budget < limits.max_new_tokens:
                limits = replace(limits, max_new_tokens=max(budget, 1),
                                 default_max_new_tokens=min(limits.default_max_new_tokens, max(budget, 1)))
        return limits

    def image_config_for(self, model: ModelSpec):
        """What an image model's Lambda needs: limits, URL TTL, protocol and the work bound of its instance."""
        # Async: a job may take what its invocation timeout allows, not what one API call may.
        return _images.ImageConfig(self.url_ttl_seconds, self.limits, protocol=model.api_protocol,
                                   step_seconds=model.step_seconds,
                                   time_budget_seconds=float(self.model_request_seconds(model)),
                                   instance_type=model.instance_type if model.existing_endpoint is None else "")

    def model_infos(self) -> list:
        """What every function (and local mode) is told about the catalog (model_api.routes.ModelInfo)."""
        return [_routes.ModelInfo(m.name, m.kind, self.endpoint_name(m),
                                  None if m.existing_endpoint is not None or not m.on_instances
                                  else m.instance_type, m.hosting, self.component_name(m), m.streaming)
                for m in self.catalog]

    @staticmethod
    def stores_images(model: ModelSpec) -> bool:
        """The model's kind answers with images stored in the bucket (lambda/model_api/kinds)."""
        return model.kind in _kinds.KINDS and _kinds.KINDS[model.kind].stores_images

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.catalog if m.name == name)

    def function_environment(self, model: ModelSpec) -> dict[str, str]:
        """The handler's environment for one model, as the stack deploys it and local mode loads it (local mode
        adds its own endpoints and credentials)."""
        environment = {
            "MODEL_NAME": model.name,
            "MODEL_KIND": model.kind,
            "ENDPOINT_NAME": self.endpoint_name(model),
            "MODEL_CATALOG": _routes.catalog_to_json(self.model_infos()),
            "INVOKE_READ_TIMEOUT_SECONDS": str(self.model_read_timeout_seconds(model)),
            "METRICS_NAMESPACE": self.metrics_namespace,
        }
        if model.streaming:
            environment["STREAM_SECONDS"] = str(self.stream_timeout_seconds)
        if model.hosting == "shared":
            environment["INFERENCE_COMPONENT"] = self.component_name(model)
        if self.cors_origin_list:
            environment["CORS_ORIGINS"] = ",".join(self.cors_origin_list)
        if hosting_of(model) is not None:
            environment.update(hosting_of(model).function_environment())
        if self.stores_images(model):
            config = self.image_config_for(model)
        else:
            config = _text.TextConfig(self.text_limits_for(model), protocol=model.api_protocol,
                                      streaming=model.streaming)
        return {**environment, **config.to_env()}

    def unrouted_environment(self) -> dict[str, str]:
        """The environment of the function answering paths and methods the API lacks (lambda/unrouted.py)."""
        environment = {"MODEL_CATALOG": _routes.catalog_to_json(self.model_infos())}
        if self.cors_origin_list:
            environment["CORS_ORIGINS"] = ",".join(self.cors_origin_list)
        return environment

    def endpoint_name(self, model: ModelSpec) -> str:
        """The endpoint's name: the existing one, the shared endpoint's, or <stack>-<model> (bounded_name)."""
        if model.existing_endpoint is not None:
            return model.existing_endpoint
        if model.hosting == "shared":
            return self.shared_endpoint_name
        return bounded_name(f"{self.stack_name}-{model.name}", 63)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return _cors.parse_origins(self.cors_origins)

    @property
    def in_vpc(self) -> bool:
        return self.vpc == "create" or self.vpc_id is not None

    @staticmethod
    def _ids(text: Optional[str]) -> tuple[str, ...]:
        return tuple(part.strip() for part in (text or "").split(",") if part.strip())

    @property
    def subnet_id_list(self) -> tuple[str, ...]:
        return self._ids(self.subnet_ids)

    @property
    def route_table_id_list(self) -> tuple[str, ...]:
        return self._ids(self.route_table_ids)

    @property
    def skipped_endpoints(self) -> tuple[str, ...]:
        return self._ids(self.vpc_endpoints_skip)

    @property
    def restricts_endpoints(self) -> bool:
        """Whether the endpoints the stack makes let only its own calls through (ENDPOINT_POLICIES): by default in
        a VPC the stack creates, where nothing else runs; only when asked in a VPC of yours."""
        if self.vpc_endpoint_policies is not None:
            return self.vpc_endpoint_policies == "restrict"
        return self.vpc == "create"

    @property
    def created_interface_services(self) -> tuple[str, ...]:
        """The interface endpoints the stack makes: those its parts call, less those the VPC has already."""
        if not self.vpc_endpoints:
            return ()
        return tuple(s for s in self.interface_services if s not in self.skipped_endpoints)

    @property
    def interface_services(self) -> tuple[str, ...]:
        """The interface endpoints what runs in the VPC calls (INTERFACE_SERVICES says who needs each)."""
        services = ["sagemaker.runtime", "logs"]
        if any(self.stores_images(m) for m in self.catalog):
            services.append("sts")
        if self.hub_token_secret and any(m.code_downloads for m in self.catalog):
            services.append("secretsmanager")
        if self.tracing:
            services.append("xray")
        return tuple(services)

    def openapi_json(self) -> str:
        """The deployment's OpenAPI document (model_api.openapi): the stack serves and writes it, local mode serves
        it; each model's schemas bounded by the config its Lambda reads."""
        configs = {m.name: _kinds.KINDS[m.kind].config_from_env(self.function_environment(m)) for m in self.catalog}
        return _openapi.document_json(self.model_infos(), configs, title=f"{self.stack_name} model API",
                                      auth=self.auth, bearer_keys=self.bearer_keys)

    def batch_job_prefix(self, model: ModelSpec) -> str:
        """What a model's batch transform job names start with (<stack>-<model>-batch, lowercase, at most 40
        characters): its batch role may write only the log streams of jobs so named."""
        return bounded_name(f"{self.stack_name}-{model.name}", 34) + "-batch"

    @property
    def shared_endpoint_name(self) -> str:
        """The endpoint every shared model's inference component runs on."""
        return bounded_name(f"{self.stack_name}-shared", 63)

    @property
    def alarm_thresholds(self) -> AlarmThresholds:
        return AlarmThresholds(self.alarm_api_5xx_percent, self.alarm_endpoint_5xx, self.alarm_latency_percent,
                               self.alarm_gpu_memory_percent, self.alarm_job_age_seconds, self.alarm_instance_hours)

    @property
    def metrics_namespace(self) -> str:
        """Where the Lambdas' request metrics go (model_api.telemetry), one namespace per deployment."""
        return f"SageMakerModelApi/{self.stack_name}"

    @property
    def shared_fleet(self) -> Optional[SharedFleet]:
        """The shared endpoint's instances (None when no model is shared)."""
        return SharedFleet.of(self.catalog, self.shared_instances, self.shared_max_instances)

    def component_name(self, model: ModelSpec) -> Optional[str]:
        """A shared model's inference component: <stack>-<model> in lowercase (its ARN, like an endpoint's)."""
        return bounded_name(f"{self.stack_name}-{model.name}", 63) if model.hosting == "shared" else None

    @property
    def lambda_timeout_seconds(self) -> int:
        """Inside the API Gateway integration timeout, so the caller gets our JSON error, not the gateway's."""
        return self.api_timeout_seconds - 1

    @property
    def invoke_read_timeout_seconds(self) -> int:
        """Inside the Lambda timeout, leaving time to store and presign the images."""
        return self.lambda_timeout_seconds - STORE_BUDGET_SECONDS

    def function_timeout_seconds(self, model: ModelSpec) -> int:
        """A model's Lambda timeout: inside its integration's (29 s), or a streamed answer's time and 5 s more."""
        return self.stream_timeout_seconds + 5 if model.streaming else self.lambda_timeout_seconds

    def model_request_seconds(self, model: ModelSpec) -> int:
        """What one request may take on the model: an async job's own timeout; for a streaming model (no 29 s wall)
        SageMaker's invocation limit less 2 s, within the stream's time; else the Lambda's read timeout."""
        config = hosting_of(model)
        if config is not None and config.request_seconds:
            return config.request_seconds
        if model.streaming:
            return min(SAGEMAKER_INVOKE_SECONDS - 2, self.stream_timeout_seconds - STORE_BUDGET_SECONDS)
        return self.invoke_read_timeout_seconds

    def model_read_timeout_seconds(self, model: ModelSpec) -> int:
        """How long a model's Lambda waits on one read from its endpoint: what is left of the 29 s, or for a
        streaming model SageMaker's own invocation limit and 2 s (between two parts of a streamed answer too)."""
        return SAGEMAKER_INVOKE_SECONDS + 2 if model.streaming else self.invoke_read_timeout_seconds

    # ------------------------------------------------------------------------------------------------ checks

    def problems(self) -> list[str]:
        out: list[str] = []
        if not STACK_NAME.match(self.stack_name):
            out.append(f"stack_name {self.stack_name!r}: letters, digits and hyphens, starting with a letter, "
                       "at most 100 characters")
        if self.region is not None and not REGION.match(self.region):
            out.append(f"region {self.region!r} is not an AWS region name")
        if self.hub_token_secret is not None and not SECRET_ID.match(self.hub_token_secret):
            out.append(f"hub_token_secret {self.hub_token_secret!r} is not a Secrets Manager secret name or ARN")
        if not self.catalog:
            out.append("models must name at least one model")
        # Every function's environment carries the catalog, and Lambda allows 4 KB of environment in all.
        catalog_bytes = sum(len(m.name) + len(m.kind) + len(self.endpoint_name(m)) + 80 for m in self.catalog)
        if catalog_bytes > 2500:
            out.append(f"{len(self.catalog)} models do not fit in one deployment (the catalog every Lambda carries "
                       "would pass Lambda's 4 KB environment limit); split them over two stacks (stack_name)")
        for model in self.catalog:
            out += model.problems()
        if not any(p.startswith("model ") for p in out):
            out += self.shared_fleet.problems() if self.shared_fleet else []
            out += shared_fit_problems(self.catalog, self.shared_instances, vcpus, gpu_count)
        isolated = {m.name: m.network_isolation for m in self.catalog if m.hosting == "shared"}
        if len(set(isolated.values())) > 1:
            out.append("network_isolation applies to the whole shared endpoint (its endpoint config's "
                       "EnableNetworkIsolation): set it on every shared model or on none (got "
                       + ", ".join(f"{name}={str(value).lower()}" for name, value in isolated.items()) + ")")
        if self.image_expiry_days < 1:
            out.append(f"image_expiry_days must be at least 1 (got {self.image_expiry_days})")
        key = KMS_KEY_ARN.match(self.kms_key_arn) if self.kms_key_arn is not None else None
        if self.kms_key_arn is not None and not key:
            out.append(f"kms_key_arn {self.kms_key_arn!r} is not a KMS key ARN (key/<uuid> or key/mrk-<32 hex>)")
        elif key and self.region is not None and key["region"] != self.region:
            out.append(f"kms_key_arn is in {key['region']}, the stack in {self.region}: S3 and SageMaker use keys of "
                       "their own region only (a multi-Region key has a replica ARN in each region)")
        if not 60 <= self.url_ttl_seconds <= MAX_URL_TTL_SECONDS:
            out.append(f"url_ttl_seconds must be from 60 to {MAX_URL_TTL_SECONDS} (got {self.url_ttl_seconds}): "
                       "URLs are signed with a role session, which AWS caps at 1 hour when assumed from the "
                       "Lambda's own, and the signer renews it while it still outlives the URL")
        out += self.alarm_thresholds.problems()
        if self.alarm_email is not None and not re.match(EMAIL, self.alarm_email):
            out.append(f"alarm_email {self.alarm_email!r} is not an email address")
        if self.monthly_budget_usd is not None:
            if not 1 <= self.monthly_budget_usd <= 1_000_000:
                out.append(f"monthly_budget_usd must be from 1 to 1000000 (got {self.monthly_budget_usd:g})")
            if self.alarm_email is None:
                out.append("monthly_budget_usd needs alarm_email: the budget tells that address when SageMaker's "
                           "cost passes 80% of it, or is forecast to pass all of it")
        if self.hub_token_field is not None:
            if self.hub_token_secret is None:
                out.append("hub_token_field goes with hub_token_secret (the key of the token in that JSON secret)")
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", self.hub_token_field):
                out.append(f"hub_token_field {self.hub_token_field!r} must be a JSON key of letters, digits, '_', "
                           "'.' or '-'")
        if self.log_level not in LOG_LEVELS:
            out.append(f"log_level must be {' or '.join(LOG_LEVELS)} (got {self.log_level!r}): each request's log "
                       "line carries its metrics and is INFO")
        if self.api_logging not in API_LOGGING:
            out.append(f"api_logging must be one of {', '.join(API_LOGGING)} (got {self.api_logging!r})")
        streamed = [m.name for m in self.catalog if m.streaming]
        if streamed and self.snapstart:
            out.append(f"snapstart and streaming ({', '.join(streamed)}): a streaming model's function runs its own "
                       "runtime loop (lambda/stream_runtime.py), SnapStart snapshots the managed runtime's; "
                       "pick one")
        if not 30 <= self.stream_timeout_seconds <= 895:
            out.append(f"stream_timeout_seconds must be from 30 to 895 (a streamed answer's Lambda has 5 s more, "
                       f"and Lambda allows 900; got {self.stream_timeout_seconds})")
        if not STORE_BUDGET_SECONDS + 6 <= self.api_timeout_seconds <= 29:
            out.append(f"api_timeout_seconds must be from {STORE_BUDGET_SECONDS + 6} to 29 "
                       f"(got {self.api_timeout_seconds})")
        out += self.throttle_problems()
        if self.daily_quota < 1:
            out.append(f"daily_quota must be at least 1 (got {self.daily_quota})")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            out.append(f"log_retention_days must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} "
                       f"(got {self.log_retention_days})")
        out += self.network_problems()
        out += _cors.origin_problems(self.cors_origin_list)
        out += self.domain_problems()
        out += self.auth_problems()
        if not 10 <= self.waf_rate_limit <= 2_000_000_000:
            out.append(f"waf_rate_limit must be from 10 to 2000000000 requests per 5 minutes (got {self.waf_rate_limit})")
        out += self.limits.problems()
        out += self.text_limits.problems()
        if self.region is not None and REGION.match(self.region):
            out += self.region_problems(self.region)
        if not self.limits.problems():
            for model in self.catalog:
                if self.stores_images(model) and model.step_seconds is not None:
                    out += _default_image_fits(model, self)
        return out

    def throttle_problems(self) -> list[str]:
        """Each limit positive; with API keys, the stage's above the key's: the stage limit is shared by every caller
        of a method (keyed or not, valid key or not), so at the key's own limit anyone could use it up for every key
        holder (API Gateway Developer Guide, "Throttle requests to your REST APIs": per-stage limits apply at the
        method level, per-client limits to each usage plan key)."""
        out = []
        for name in ("throttle_rate", "stage_throttle_rate", "keyless_throttle_rate"):
            if getattr(self, name) <= 0:
                out.append(f"{name} must be above 0 requests per second (got {getattr(self, name):g})")
        for name in ("throttle_burst", "stage_throttle_burst", "keyless_throttle_burst"):
            if getattr(self, name) < 1:
                out.append(f"{name} must be at least 1 request (got {getattr(self, name)})")
        if self.auth == "api_key" and not out:
            if self.stage_throttle_rate <= self.throttle_rate:
                out.append(f"stage_throttle_rate ({self.stage_throttle_rate:g}) must be above throttle_rate "
                           f"({self.throttle_rate:g}): every caller shares the stage's limit, so at the key's own "
                           "limit callers without a key could use it up for the key holders")
            if self.stage_throttle_burst <= self.throttle_burst:
                out.append(f"stage_throttle_burst ({self.stage_throttle_burst}) must be above throttle_burst "
                           f"({self.throttle_burst}), for the same reason")
        if not 0 <= self.authorizer_concurrency <= 1000:
            out.append(f"authorizer_concurrency must be from 0 (none reserved) to 1000 (got "
                       f"{self.authorizer_concurrency})")
        return out

    def region_problems(self, region: str) -> list[str]:
        """What this deployment uses that `region` does not have: a DLC image, a hosting mode, AWS Budgets. Settings
        check it when `region` is set; make preflight checks the region it deploys to."""
        out = []
        for model in self.catalog:
            repository = model.dlc_repository
            if repository and region not in repository_regions(repository):
                out.append(f"model {model.name!r}: region {region!r} has no {repository} image (the DLC "
                           f"registry does not publish it there); pick another region or set "
                           f"{model.name}.container to an image URI in {region}")
            config = hosting_of(model)
            missing = missing_feature(config.feature, region) if config is not None and config.feature else None
            if missing:
                out.append(f"model {model.name!r}: {missing}; pick another region or another hosting")
        if self.monthly_budget_usd is not None:
            missing = missing_feature("monthly_budget_usd (AWS Budgets)", region)
            if missing:
                out.append(f"{missing}; deploy without monthly_budget_usd and set a budget in the Billing console")
        return out

    def auth_problems(self) -> list[str]:
        out = []
        if self.auth not in AUTH_MODES:
            out.append(f"auth must be one of {', '.join(AUTH_MODES)} (got {self.auth!r})")
        if self.auth == "cognito" and self.cognito_user_pool_arn is None:
            out.append("auth=cognito needs cognito_user_pool_arn (the user pool whose tokens are accepted)")
        if self.cognito_user_pool_arn is not None:
            pool = USER_POOL_ARN.match(self.cognito_user_pool_arn)
            if self.auth != "cognito":
                out.append("cognito_user_pool_arn goes with auth=cognito")
            if pool is None:
                out.append(f"cognito_user_pool_arn {self.cognito_user_pool_arn!r} is not a Cognito user pool ARN "
                           "such as arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123")
        return out

    def domain_problems(self) -> list[str]:
        out = []
        if (self.domain_name is None) != (self.certificate_arn is None):
            out.append("domain_name and certificate_arn go together (an ACM certificate for that name)")
        if self.domain_name is not None and not DOMAIN_NAME.match(self.domain_name):
            out.append(f"domain_name {self.domain_name!r} is not a DNS name such as api.example.com")
        certificate = CERTIFICATE_ARN.match(self.certificate_arn) if self.certificate_arn is not None else None
        if self.certificate_arn is not None and certificate is None:
            out.append(f"certificate_arn {self.certificate_arn!r} is not an ACM certificate ARN")
        elif certificate and self.region is not None and certificate["region"] != self.region:
            out.append(f"certificate_arn is in {certificate['region']}, the stack in {self.region}: a regional API's "
                       "domain needs a certificate of its own region")
        if self.hosted_zone_id is not None:
            if self.domain_name is None:
                out.append("hosted_zone_id goes with domain_name")
            if not HOSTED_ZONE_ID.match(self.hosted_zone_id):
                out.append(f"hosted_zone_id {self.hosted_zone_id!r} is not a Route 53 hosted zone id such as "
                           "Z0123456789ABCDEFGHIJ")
        return out

    def network_problems(self) -> list[str]:
        if self.vpc not in VPC_MODES:
            return [f"vpc must be one of {', '.join(VPC_MODES)} (got {self.vpc!r}); vpc_id=<id> uses a VPC of yours"]
        if self.vpc == "create" and self.vpc_id is not None:
            return ["vpc=create makes a VPC and vpc_id names one of yours: set one of them"]
        out = network_problems(self.vpc_id, self.subnet_id_list, self.route_table_id_list,
                               self.vpc_endpoints and "s3" not in self.skipped_endpoints, self.interface_services,
                               self.skipped_endpoints, self.vpc_endpoint_policies)
        if self.in_vpc:
            out += [f"model {m.name!r}: hosting={m.hosting} cannot run in a VPC ({HOSTING_MODES[m.hosting].vpc_refusal});"
                    f" use hosting={' or '.join(n for n, mode in HOSTING_MODES.items() if mode.vpc_refusal is None)},"
                    " or deploy it without vpc/vpc_id"
                    for m in self.catalog if m.hosting in HOSTING_MODES and HOSTING_MODES[m.hosting].vpc_refusal]
        if self.vpc == "create":
            for model in self.catalog:
                if model.source_type == "hub":
                    out.append(f"model {model.name!r} downloads its weights from the Hugging Face Hub when it starts, "
                               "and vpc=create has no route to the internet: give it an s3:// artifact with the "
                               f"weights (-c {model.name}.source=s3://...; python -m ops.artifact builds one), or use "
                               "vpc_id=<a VPC of yours with a NAT gateway>")
        return out

    # ------------------------------------------------------------------------------------------------ reading

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "Settings":
        """Settings from name -> value (text or typed); raises SettingsError listing every problem.

        Names with a dot (`gpt2-tgi.instance_type`) set a field of one model; a bare model field name
        (`instance_type`) is a shorthand when exactly one model is selected."""
        problems: list[str] = []
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls) if not f.metadata.get("derived")}
        converted: dict[str, Any] = {}
        model_values: dict[tuple[Optional[str], str], Any] = {}
        for name, value in values.items():
            if "." in name:
                model, _, field_name = name.partition(".")
                model_values[(model, FIELD_ALIASES.get(field_name, field_name))] = value
            elif name in known:
                try:
                    converted[name] = _convert(value, hints[name])
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
            elif name in OVERRIDABLE or name in FIELD_ALIASES or name in added_options():
                model_values[(None, FIELD_ALIASES.get(name, name))] = value
            else:
                close = difflib.get_close_matches(name, known | set(_model_fields()) | set(FIELD_ALIASES), n=1)
                problems.append(f"unknown setting {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        settings = replace(cls(), **converted)
        catalog, catalog_problems = _build_catalog(settings.models, settings.model_specs, model_values)
        settings = replace(settings, catalog=catalog)
        problems += catalog_problems + settings.problems()
        if problems:
            raise SettingsError(problems)
        return settings

    @classmethod
    def from_context(cls, node) -> "Settings":
        """Settings from a construct node's context (cdk.json and -c name=value)."""
        return cls.from_values(setting_values(node.get_all_context()))


def _default_image_fits(model: ModelSpec, settings: "Settings") -> list[str]:
    """The default image request (default size and steps, one image) must fit in the time a request has."""
    config = settings.image_config_for(model)
    limits = settings.limits
    request = _images.ImageRequest("x", None, limits.default_size, limits.default_size, limits.default_steps,
                                   limits.default_guidance_scale, None, 1)
    needed = _images.estimate_seconds(request, config.step_seconds)
    if needed <= config.time_budget_seconds:
        return []
    return [f"model {model.name!r}: the default image request ({limits.default_size}x{limits.default_size}, "
            f"{limits.default_steps} steps) takes about {needed:.0f} s on {model.instance_type}, over the "
            f"{config.time_budget_seconds:.0f} s a request has; use a GPU instance or lower default_steps / "
            "default_size"]


def load_settings(pairs: list[str] = (), cdk_json: Optional[Path] = None) -> Settings:
    """Settings as `cdk synth` reads them: cdk.json's context, then each NAME=VALUE (like -c NAME=VALUE)."""
    from deployment.lambda_source import ROOT

    context = json.loads((cdk_json or ROOT / "cdk.json").read_text())["context"]
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SettingsError([f"-c {pair!r}: expected NAME=VALUE"])
        context[name.strip()] = value
    return Settings.from_values(setting_values(context))


def setting_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in a CDK context: every key that is not CDK's own. CDK's own keys contain ':' or start with
    '@' (feature flags, lookups, CLI options)."""
    return {key: value for key, value in context.items()
            if ":" not in key and not key.startswith("@") and key != "acknowledged-issue-numbers"}


def _model_fields() -> list[str]:
    """What -c <model>.<field> may name: ModelSpec's fields, and those the registered hosting modes add."""
    return [*OVERRIDABLE, *(name for name in added_options() if name not in OVERRIDABLE)]


def _with_values(base: ModelSpec, changes: Mapping[str, Any]) -> ModelSpec:
    """base with fields changed: ModelSpec's own replaced, those hosting modes add merged into mode_options."""
    added = {k: v for k, v in changes.items() if k not in OVERRIDABLE}
    own = {k: v for k, v in changes.items() if k in OVERRIDABLE}
    return replace(base, **own, **({"mode_options": {**base.mode_options, **added}} if added else {}))


def _build_catalog(models: str, specs: Mapping[str, Any], values: Mapping[tuple, Any]):
    """The selected models with their per-model settings applied, and every problem found on the way."""
    problems: list[str] = []
    known = _model_fields()
    added = added_options()
    hints = {**typing.get_type_hints(ModelSpec), **{name: option.hint for name, option in added.items()}}
    names = [n.strip() for n in models.split(",") if n.strip()]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"models lists {name!r} twice")
    custom: dict[str, ModelSpec] = {}
    for name, spec in (specs or {}).items():
        if not isinstance(spec, dict) or not {"kind", "source"} <= set(spec):
            problems.append(f"model_specs[{name!r}] must be an object with at least kind and source")
            continue
        spec = {FIELD_ALIASES.get(k, k): v for k, v in spec.items()}
        unknown = sorted(set(spec) - set(known))
        if unknown:
            problems.append(f"model_specs[{name!r}] has unknown fields {unknown}; known: {', '.join(known)}")
            continue
        try:
            custom[name] = _with_values(ModelSpec(name=name, kind=spec["kind"], source=spec["source"]),
                                        {k: _convert(v, hints[k]) for k, v in spec.items()})
        except ValueError as exc:
            problems.append(f"model_specs[{name!r}]: {exc}")
    catalog = []
    for name in dict.fromkeys(names):
        base = custom.get(name) or PRESETS.get(name)
        if base is None:
            problems.append(f"unknown model {name!r}: presets are {', '.join(PRESETS)}; define others in model_specs")
            continue
        changes = {}
        for (model, field_name), value in values.items():
            if model is None and len(names) != 1:
                continue
            if model not in (None, name):
                continue
            try:
                changes[field_name] = _convert(value, hints[field_name]) if field_name in known else None
            except ValueError as exc:
                problems.append(f"{name}.{field_name}: {exc}")
        catalog.append(_with_values(base, {k: v for k, v in changes.items() if k in known}))
    for model, field_name in values:
        if model is not None and model not in names:
            problems.append(f"setting '{model}.{field_name}' names a model that models does not select "
                            f"({', '.join(names) or 'none'})")
        elif field_name not in known:
            problems.append(f"setting '{model}.{field_name}': models have no field {field_name!r}; "
                            f"fields: {', '.join(known)}")
        elif model is None and len(names) != 1:
            problems.append(f"setting {field_name!r} is ambiguous with {len(names)} models; use "
                            f"<model>.{field_name} (e.g. {names[0] if names else 'stable-diffusion'}.{field_name})")
    return tuple(catalog), problems


def _convert(value: Any, hint: Any) -> Any:
    optional = type(None) in typing.get_args(hint)
    target = next((t for t in typing.get_args(hint) if t is not type(None)), hint) if optional else hint
    if target is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(f"expected a JSON object, got {value!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {value!r}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if optional and text.lower() in ("", "none", "null"):
            return None
        if target is bool:
            if text.lower() in ("true", "yes", "1"):
                return True
            if text.lower() in ("false", "no", "0"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if target is int:
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {value!r}") from None
        if target is float:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        return text
    if value is None:
        if optional:
            return None
        raise ValueError("must not be null")
    if target is bool and isinstance(value, bool):
        return value
    if target is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if target is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if target is str and isinstance(value, str):
        return value
    raise ValueError(f"expected {target.__name__}, got {value!r}")
