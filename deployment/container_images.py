"""Container image URIs per region: the AWS Deep Learning Containers (DLC) of Hugging Face, or an image of your own.

The DLC registry account differs per region (table from the SageMaker Python SDK's image config), and the China
partition uses another ECR host. In the template the URI is `FindInMap(region) + AWS::URLSuffix`, so the same
template works for environment-agnostic stacks in any listed region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # aws_cdk starts a Node.js (jsii) process on import: settings, local mode and ops do without it
    from constructs import Construct

HF_INFERENCE_REPOSITORY = "huggingface-pytorch-inference"
TGI_REPOSITORY = "huggingface-pytorch-tgi-inference"
TGI_TAG = "2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"  # the newest TGI DLC the SageMaker SDK lists; GPU only
# The maintained Hugging Face inference DLC: the DLC project's available-images list names
# huggingface-pytorch-inference:2.6.0-transformers5.5.3-{gpu-py312-cu124,cpu-py312}-ubuntu22.04 and marks the 4.51.3
# images superseded. What it holds, as far as the tag and the DLC sources say: PyTorch 2.6.0, transformers 5.5.3,
# Python 3.12, multi-model-server 1.1.11, and a sagemaker-huggingface-inference-toolkit with the transformers-5
# changes (aws/sagemaker-huggingface-inference-toolkit#141, no PyPI release yet). Its diffusers and toolkit versions
# are not in the stored DLC sources: the inference code uses only APIs that diffusers 0.33-0.42 share.
HF_INFERENCE_TAGS = {
    True: "2.6.0-transformers5.5.3-gpu-py312-cu124-ubuntu22.04",
    False: "2.6.0-transformers5.5.3-cpu-py312-ubuntu22.04",
}
# Library versions of that container whose MAJOR version local mode must share (tests/models/test_container_parity).
HF_INFERENCE_LIBRARIES = {"torch": "2.6.0", "transformers": "5.5.3"}

_MAIN_ACCOUNT = "763104351884"
# Registry account per region (the SageMaker Python SDK's image config). Every DLC repository lives in these.
DLC_ACCOUNTS = {
    **{region: _MAIN_ACCOUNT for region in (
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-central-1",
        "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3", "ap-northeast-1", "ap-northeast-2", "ap-south-1",
        "ap-southeast-1", "ap-southeast-2",
    )},
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
# The regions each repository is published in. The SDK's Hugging Face inference entries have no registry in these
# newer regions (TGI 3.3.6 has them all): a stack there with an HF inference image would fail at deploy time.
_HF_INFERENCE_MISSING = {"ap-east-2", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "mx-central-1"}
IMAGE_REGIONS = {
    HF_INFERENCE_REPOSITORY: {r: a for r, a in DLC_ACCOUNTS.items() if r not in _HF_INFERENCE_MISSING},
    TGI_REPOSITORY: dict(DLC_ACCOUNTS),
}

ECR_IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?"
    r"/(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$"
)


def url_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def dlc_image_uri(region: str, repository: str, tag: str) -> str:
    """The plain URI of a DLC image in a region where its repository is published (docs, tests, preflight)."""
    return f"{IMAGE_REGIONS[repository][region]}.dkr.ecr.{region}.{url_suffix(region)}/{repository}:{tag}"


def repository_regions(repository: str) -> set[str]:
    """Regions a DLC repository is published in (a model's dlc_repository: an image of your own has none)."""
    return set(IMAGE_REGIONS[repository])


def hf_inference_image_uri(region: str, gpu: bool) -> str:
    return dlc_image_uri(region, HF_INFERENCE_REPOSITORY, HF_INFERENCE_TAGS[gpu])


@dataclass(frozen=True)
class ContainerImage:
    """An image for a SageMaker model: its URI and the ECR repository the execution role may pull from."""

    uri: str
    repository_arn: str

    @classmethod
    def hugging_face_inference(cls, scope: Construct, gpu: bool) -> "ContainerImage":
        """The Hugging Face PyTorch inference DLC of the stack's region (GPU or CPU variant)."""
        return cls._dlc(scope, HF_INFERENCE_REPOSITORY, HF_INFERENCE_TAGS[gpu])

    @classmethod
    def text_generation_inference(cls, scope: Construct) -> "ContainerImage":
        """The Hugging Face Text Generation Inference (TGI) DLC of the stack's region (GPU only)."""
        return cls._dlc(scope, TGI_REPOSITORY, TGI_TAG)

    @classmethod
    def _dlc(cls, scope: Construct, repository: str, tag: str) -> "ContainerImage":
        from aws_cdk import Aws, Fn

        # A region outside the repository's map fails the deploy at once (FindInMap), before anything is created.
        account = _dlc_accounts(scope, repository).find_in_map(Aws.REGION, "account")
        uri = Fn.join("", [account, ".dkr.ecr.", Aws.REGION, ".", Aws.URL_SUFFIX, "/", repository, ":", tag])
        arn = Fn.join("", ["arn:", Aws.PARTITION, ":ecr:", Aws.REGION, ":", account, ":repository/", repository])
        return cls(uri=uri, repository_arn=arn)

    @classmethod
    def from_uri(cls, uri: str) -> "ContainerImage":
        """Any ECR image (your own, or another DLC). Raises ValueError for anything that is not an ECR image URI."""
        match = ECR_IMAGE_URI.match(uri)
        if not match:
            raise ValueError(f"not an ECR image URI: {uri!r}")
        region = match["region"]
        arn = f"arn:{partition(region)}:ecr:{region}:{match['account']}:repository/{match['repository']}"
        return cls(uri=uri, repository_arn=arn)


_MAPPING_IDS = {HF_INFERENCE_REPOSITORY: "HfInferenceRegions", TGI_REPOSITORY: "TgiRegions"}


def _dlc_accounts(scope: "Construct", repository: str):
    """One mapping per repository and stack (a CfnMapping), shared by every model using that repository."""
    from aws_cdk import CfnMapping, Stack

    stack = Stack.of(scope)
    existing = stack.node.try_find_child(_MAPPING_IDS[repository])
    if existing is not None:
        return existing
    return CfnMapping(stack, _MAPPING_IDS[repository],
                      mapping={r: {"account": a} for r, a in sorted(IMAGE_REGIONS[repository].items())})
