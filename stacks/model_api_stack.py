"""The one stack of the app: image bucket + Stable Diffusion endpoint + REST API, and what a user needs to call it."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, SecretValue, Stack, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.container_images import ContainerImage
from stacks.image_api import ImageApi
from stacks.image_bucket import ImageBucket
from stacks.lambda_source import MODELS_DIR
from stacks.model_artifact import ModelArtifact
from stacks.model_endpoint import ModelEndpoint
from stacks.settings import LOG_RETENTION_DAYS, Settings

STABLE_DIFFUSION_CODE = MODELS_DIR / "stable_diffusion" / "code"


class ModelApiStack(Stack):
    """Attributes: settings, images (ImageBucket), artifact (ModelArtifact), endpoint (ModelEndpoint), api."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs):
        super().__init__(scope, construct_id, description="SageMaker Model API: Stable Diffusion behind a REST API",
                         **kwargs)
        self.settings = settings
        retention = _retention(settings)
        key = kms.Key.from_key_arn(self, "ImageKey", settings.kms_key_arn) if settings.kms_key_arn else None

        self.images = ImageBucket(
            self, "Images",
            expiry_days=settings.image_expiry_days,
            encryption_key=key,
            retain=settings.retain_bucket,
        )
        self.artifact = ModelArtifact(self, "StableDiffusionCode", code_dir=STABLE_DIFFUSION_CODE)
        image = (ContainerImage.from_uri(settings.image_uri) if settings.image_uri
                 else ContainerImage.hugging_face_inference(self, gpu=settings.gpu))
        self.endpoint = ModelEndpoint(
            self, "StableDiffusion",
            endpoint_name=settings.endpoint_name,
            image=image,
            environment=_model_environment(settings),
            model_data_url=self.artifact.s3_url,
            model_data_arn=self.artifact.object_arn,
            instance_type=settings.instance_type,
            instance_count=settings.instance_count,
            startup_timeout_seconds=settings.startup_timeout_seconds,
            volume_size_gb=settings.volume_size_gb,
            # SageMaker rejects a volume key on instance types with NVMe storage (encrypted by the hardware).
            volume_kms_key_arn=None if settings.nvme else settings.kms_key_arn,
            log_retention=retention,
        )
        self.api = ImageApi(
            self, "Api",
            endpoint=self.endpoint,
            images=self.images,
            limits=settings.limits,
            url_ttl_seconds=settings.url_ttl_seconds,
            timeout_seconds=settings.api_timeout_seconds,
            invoke_read_timeout_seconds=settings.invoke_read_timeout_seconds,
            throttle_rate=settings.throttle_rate,
            throttle_burst=settings.throttle_burst,
            daily_quota=settings.daily_quota,
            log_retention=retention,
        )
        self._outputs()
        self._acknowledge_nag_findings()

    def _outputs(self) -> None:
        key_id = self.api.api_key.key_id
        get_key = f"aws apigateway get-api-key --api-key {key_id} --include-value --query value --output text " \
                  f"--region {self.region}"
        CfnOutput(self, "ImagesUrl", value=self.api.images_url, description="POST or GET this URL")
        CfnOutput(self, "ApiKeyId", value=key_id, description="Id of the API key (send its value as x-api-key)")
        CfnOutput(self, "GetApiKeyCommand", value=get_key, description="Prints the API key value")
        CfnOutput(self, "BucketName", value=self.images.bucket.bucket_name, description="Where images are stored")
        CfnOutput(self, "EndpointName", value=self.endpoint.endpoint_name, description="SageMaker endpoint")
        CfnOutput(
            self, "CurlExample",
            value=f"curl -s -X POST '{self.api.images_url}' -H \"x-api-key: $({get_key})\" "
                  "-H 'Content-Type: application/json' -d '{\"prompt\": \"a cyborg tiger\"}'",
            description="Generates an image and prints its presigned URL",
        )

    def _acknowledge_nag_findings(self) -> None:
        """cdk-nag AwsSolutions findings that are deliberate, each with the reason."""
        api = self.api
        acks = [
            (api.api, "AwsSolutions-APIG3", "WAF costs at least ~$6/month per web ACL; API key, usage-plan "
             "throttling and a daily quota already bound what any caller can spend on the GPU."),
            (api.api, "AwsSolutions-APIG4", "Access is controlled by the API key and its usage plan, the "
             "product's documented auth model; IAM or Cognito authorizers are out of scope for a key-based API."),
            (api.api, "AwsSolutions-COG4", "No Cognito user pool: callers authenticate with the API key."),
            (api.api, "AwsSolutions-APIG6", "Execution logging needs the account-wide API Gateway CloudWatch "
             "role, shared by every API in the region and left behind by cdk destroy; access logging is on."),
            (self.images.bucket, "AwsSolutions-S1", "Objects are short-lived generated images written only by "
             "the Lambda; every request is already in the API access log. A log bucket would outlive destroy."),
            (self.endpoint.role, "AwsSolutions-IAM5[Resource::*]", "Only ecr:GetAuthorizationToken and "
             "cloudwatch:PutMetricData, which AWS allows on '*' alone; the metrics one is scoped by a namespace "
             "condition."),
            (api.role, f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(_cfn(self.images.bucket))}.Arn>/"
             f"{self.images.key_prefix}*]",
             "Image keys are uuid4s made per request, so the grant must cover the images/ prefix; it is the only "
             "prefix the Lambda can touch."),
        ]
        for scope, rule, reason in acks:
            Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def _cfn(construct):
    return construct.node.default_child


def _retention(settings: Settings) -> logs.RetentionDays:
    # RetentionDays lists CloudWatch's allowed periods in the order of LOG_RETENTION_DAYS (INFINITE last).
    finite = [r for r in logs.RetentionDays if r is not logs.RetentionDays.INFINITE]
    return dict(zip(LOG_RETENTION_DAYS, finite))[settings.log_retention_days]


def _model_environment(settings: Settings) -> dict[str, str]:
    environment = {
        "HF_MODEL_ID": settings.hf_model_id,
        "HF_TASK": "text-to-image",
        "SAGEMAKER_PROGRAM": "inference.py",
        # Generation takes seconds of GPU: one worker per GPU, no request interleaving.
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "SD_MAX_SIZE": str(settings.max_size),
        "SD_MAX_STEPS": str(settings.max_steps),
        "SD_MAX_IMAGES": str(settings.max_images),
    }
    if settings.hf_model_revision:
        environment["HF_MODEL_REVISION"] = settings.hf_model_revision
    if settings.hub_token_secret:
        # A CloudFormation dynamic reference: the token is resolved at deploy time and never in the template.
        token = SecretValue.secrets_manager(settings.hub_token_secret).unsafe_unwrap()
        environment["HF_API_TOKEN"] = token
        environment["HF_TOKEN"] = token
    return environment
