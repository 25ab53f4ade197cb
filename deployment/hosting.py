"""Hosting modes: how SageMaker runs a model, chosen per model with `-c <model>.hosting=<mode>`.

Each mode is one class here plus its entry in HOSTING_MODES: its settings' checks (run at synth, with every other
setting's), the endpoint config's production variant it makes, and what it costs (ops/cost.py). No aws_cdk import:
settings, local mode and the cost report read this module without starting the CDK's node kernel.

  realtime    instances always on (min_instances), optionally autoscaled up to max_instances on invocations per
              instance. Lowest latency; pays for every instance-hour, idle or not.
  serverless  SageMaker Serverless Inference: CPU only, 1-6 GB of memory, scales to zero, pays per second of
              inference (plus provisioned concurrency, if any, while deployed). Cold starts of seconds to a minute.
  shared      several models on one endpoint's instances, one SageMaker inference component each (its memory, CPU
              cores and accelerators reserved per copy; copies between min_instances and max_instances, autoscaled on
              invocations per copy). Two small models stop paying for two instances.
  async       SageMaker Asynchronous Inference: requests queue in S3, results land in S3, the API answers 202 with
              a job id; instances scale on the backlog between min_instances (default 0: none while idle) and
              max_instances. Jobs may run up to an hour and return many large images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Protocol

from model_api.kinds import KINDS as _KINDS

if TYPE_CHECKING:
    from deployment.model_catalog import ModelSpec

HOURS_PER_MONTH = 730
# Where async jobs live in the deployment's bucket (lambda/model_api/aws.S3JobStore's default prefix; the stack's
# ImageBucket job_prefix; local mode's stand-in endpoint writes answers under it too).
JOB_PREFIX = "jobs/"
# Where batch transform jobs keep their files in the same bucket (ops/batch.py, stacks/batch_model.py).
BATCH_PREFIX = "batch/"
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600

MAX_INSTANCES = 100  # a bound on a typo, far above any default quota
# Memory one copy of a shared model reserves by default. The reservation schedules copies, it does not cap them; and
# what the scheduler offers is far below the instance's memory: on ml.g5.xlarge (16 GiB) 1024 MB was accepted and
# 4096 MB refused, "There is not enough hardware resources on the instances for this endpoint to create a copy of the
# inference component" (third-party measurement, July 2026: huggingface skills, SageMaker deployment notes).
SHARED_MEMORY_MB = 1024

# Serverless Inference limits (SageMaker API reference, ProductionVariantServerlessConfig; Developer Guide, "Invoke
# a serverless endpoint"): memory 1024..6144 MB in 1 GB steps, 1..200 concurrent invocations, provisioned
# concurrency <= max concurrency; the container must answer /ping within 3 minutes (download included) and each
# invocation within 60 s; payloads up to 4 MB. CPU only: no GPU image can run there.
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
SERVERLESS_INVOCATION_SECONDS = 60
# Memory a CPU model needs beyond its fp32 weights: the Python runtime, torch and the inference toolkit (~1 GB), and
# activations (half the weights again, a deliberate margin). Serverless refuses a model that needs more than 6 GB.
RUNTIME_OVERHEAD_GB = 1.0


def _kind_target(model: "ModelSpec", name: str) -> float:
    """A kind's default autoscaling target (lambda/model_api/kinds: target_invocations, per instance or copy per
    minute; target_backlog, jobs waiting per instance), read when settings are built: a kind registered later counts
    too."""
    return getattr(_KINDS[model.kind], name) if model.kind in _KINDS else 10.0


def serverless_memory_needed_mb(weights_gb: float) -> int:
    return int((weights_gb * 1.5 + RUNTIME_OVERHEAD_GB) * 1024)


@dataclass(frozen=True)
class ModeOption:
    """A model field a hosting mode adds beyond ModelSpec's own (a mode's `added_options`): read with
    ModelSpec.option(name), set with -c <model>.<name>=value like any field, documented in docs/settings.md."""

    hint: Any  # its type, as a ModelSpec field's annotation (int, Optional[float], ...)
    default: Any
    meaning: str


class PriceBook(Protocol):
    """Prices of one region (ops/prices.py): None where unknown."""

    def hourly(self, instance_type: str) -> Optional[float]: ...

    def serverless_gb_second(self) -> Optional[float]: ...


@dataclass(frozen=True)
class CostLine:
    """What a model's hosting costs in USD; None where the price table does not know (never guessed)."""

    hourly_min: Optional[float]
    hourly_max: Optional[float]
    idle_monthly: Optional[float]
    per_second_busy: Optional[float]  # serverless: per second of inference (per request-second)
    note: str = ""


class HostingMode:
    """What every hosting mode answers, with the defaults most take; a mode (a frozen dataclass of its typed
    options, registered in HOSTING_MODES) overrides what differs. See docs/development.md for the whole interface."""

    name: ClassVar[str]
    # The deployment.service_regions feature a mode needs (None: wherever SageMaker hosts endpoints).
    feature: ClassVar[Optional[str]] = None
    # The model fields (-c <model>.<field>) this mode reads: its typed options, built by from_model. A hosting
    # option of another mode, set on a model of this one, is refused (hosting_problems), with the reason in
    # not_options; added_options are fields of its own that ModelSpec lacks (ModeOption).
    options: ClassVar[tuple[str, ...]] = ()
    not_options: ClassVar[dict[str, str]] = {}
    added_options: ClassVar[dict[str, "ModeOption"]] = {}
    # What the endpoint construct (stacks/model_endpoint.py) asks of a mode: the action that invokes it, whether it
    # runs jobs from the bucket (async inference config, the role's job objects), and scale(endpoint), its hook.
    invoke_action: ClassVar[str] = "sagemaker:InvokeEndpoint"
    takes_jobs: ClassVar[bool] = False
    # Runs on instances of the model's instance_type (the catalog shows it; batch jobs default to it).
    on_instances: ClassVar[bool] = True
    # Why the mode cannot run in a VPC (vpc, vpc_id), or None where it can.
    vpc_refusal: ClassVar[Optional[str]] = None
    request_seconds: ClassVar[Optional[int]] = None  # a request's own time bound; None: the API call's

    @staticmethod
    def model_problems(model: "ModelSpec") -> list[str]:
        """What a model cannot be under this mode, beyond its options' own bounds (problems)."""
        return []

    def function_environment(self) -> dict:
        """What the model's Lambda must know of its hosting."""
        return {}

    def scale(self, endpoint) -> None:
        """The construct hook: add the mode's scaling to a ModelEndpoint (none by default)."""


class _InstanceFleet(HostingMode):
    """What a mode on its own instances (realtime, async) answers alike: instance_type, min_instances and
    max_instances are its fields."""

    instance_type: str
    min_instances: int
    max_instances: int

    @property
    def autoscaled(self) -> bool:
        return self.max_instances > self.min_instances

    def size_label(self) -> str:
        return self.instance_type

    def count_label(self) -> str:
        return f"{self.min_instances}-{self.max_instances}" if self.autoscaled else str(self.min_instances)

    def instances(self) -> Optional[tuple[str, int]]:
        """(instance type, most instances it may run), for the endpoint-usage quota."""
        return self.instance_type, self.max_instances


@dataclass(frozen=True)
class Realtime(_InstanceFleet):
    """Instances always on; autoscaled between min_instances and max_instances when they differ."""

    name: ClassVar[str] = "realtime"
    options: ClassVar[tuple[str, ...]] = ("min_instances", "max_instances", "target_invocations",
                                          "scale_in_cooldown_seconds", "scale_out_cooldown_seconds", "volume_size_gb")
    not_options: ClassVar[dict[str, str]] = {"target_backlog": "realtime scales on target_invocations",
                                             "memory_mb": "an instance's memory is its type's"}
    instance_type: str
    min_instances: int = 1
    max_instances: int = 1
    target_invocations: float = 10.0
    scale_in_cooldown_seconds: int = 900
    scale_out_cooldown_seconds: int = 300
    startup_timeout_seconds: int = 600
    volume_size_gb: Optional[int] = None

    @classmethod
    def from_model(cls, model: "ModelSpec") -> "Realtime":
        low = 1 if model.min_instances is None else model.min_instances
        return cls(instance_type=model.instance_type, min_instances=low,
                   max_instances=low if model.max_instances is None else model.max_instances,
                   target_invocations=_kind_target(model, "target_invocations") if model.target_invocations is None
                   else model.target_invocations,
                   scale_in_cooldown_seconds=model.scale_in_cooldown_seconds,
                   scale_out_cooldown_seconds=model.scale_out_cooldown_seconds,
                   startup_timeout_seconds=model.startup_timeout_seconds, volume_size_gb=model.volume_size_gb)

    def problems(self) -> list[str]:
        out = []
        if self.min_instances < 1:
            out.append(f"min_instances must be at least 1 (got {self.min_instances}); for a model that costs "
                       "nothing when idle use hosting=async or hosting=serverless")
        if not self.min_instances <= self.max_instances <= MAX_INSTANCES:
            out.append(f"max_instances must be from min_instances ({self.min_instances}) to {MAX_INSTANCES} "
                       f"(got {self.max_instances})")
        if not self.target_invocations > 0:
            out.append(f"target_invocations must be above 0 (got {self.target_invocations})")
        for name in ("scale_in_cooldown_seconds", "scale_out_cooldown_seconds"):
            if not 0 <= getattr(self, name) <= 3600:
                out.append(f"{name} must be from 0 to 3600 (got {getattr(self, name)})")
        return out

    def variant(self) -> dict:
        """The production variant's hosting fields (CfnEndpointConfig.ProductionVariantProperty keywords)."""
        return {"instance_type": self.instance_type, "initial_instance_count": self.min_instances,
                "container_startup_health_check_timeout_in_seconds": self.startup_timeout_seconds,
                "volume_size_in_gb": self.volume_size_gb}

    def cost(self, prices: "PriceBook") -> CostLine:
        price = prices.hourly(self.instance_type)
        if price is None:
            return CostLine(None, None, None, None, f"{self.instance_type}: not in the price table")
        return CostLine(price * self.min_instances, price * self.max_instances,
                        price * self.min_instances * HOURS_PER_MONTH, None)

    def summary(self) -> Optional[str]:
        return f"on {self.min_instances}-{self.max_instances} x {self.instance_type} (autoscaled)" \
            if self.autoscaled else None

    @staticmethod
    def runs(config: dict) -> bool:
        """Whether a DescribeEndpointConfig answer is this mode's (checked after the other modes)."""
        return True

    def scale(self, endpoint) -> None:
        """The construct hook: autoscaling on invocations per instance when max_instances > min_instances."""
        if self.autoscaled:
            endpoint.autoscale(self.min_instances, self.max_instances, self.target_invocations,
                               scale_in_cooldown_seconds=self.scale_in_cooldown_seconds,
                               scale_out_cooldown_seconds=self.scale_out_cooldown_seconds)


@dataclass(frozen=True)
class Serverless(HostingMode):
    """SageMaker Serverless Inference: no instances, billed per second of inference."""

    name: ClassVar[str] = "serverless"
    feature: ClassVar[Optional[str]] = "hosting=serverless"
    options: ClassVar[tuple[str, ...]] = ("memory_mb", "max_concurrency", "provisioned_concurrency")
    not_options: ClassVar[dict[str, str]] = {
        "min_instances": "serverless scales on its own up to max_concurrency",
        "max_instances": "serverless scales on its own up to max_concurrency",
        "volume_size_gb": "SageMaker manages a serverless endpoint's storage"}
    on_instances: ClassVar[bool] = False
    vpc_refusal: ClassVar[Optional[str]] = ("Serverless Inference supports no VPC configuration: SageMaker Developer "
                                            "Guide, Serverless Inference, feature exclusions")
    memory_mb: int = 4096
    max_concurrency: int = 5
    provisioned_concurrency: Optional[int] = None

    @classmethod
    def from_model(cls, model: "ModelSpec") -> "Serverless":
        return cls(memory_mb=cls.memory_mb if model.memory_mb is None else model.memory_mb,
                   max_concurrency=model.max_concurrency, provisioned_concurrency=model.provisioned_concurrency)

    autoscaled: ClassVar[bool] = False

    def problems(self) -> list[str]:
        out = []
        if self.memory_mb not in SERVERLESS_MEMORY_MB:
            out.append(f"memory_mb must be one of {', '.join(map(str, SERVERLESS_MEMORY_MB))} (got {self.memory_mb})")
        if not 1 <= self.max_concurrency <= SERVERLESS_MAX_CONCURRENCY:
            out.append(f"max_concurrency must be from 1 to {SERVERLESS_MAX_CONCURRENCY} (got {self.max_concurrency})")
        if self.provisioned_concurrency is not None and not 1 <= self.provisioned_concurrency <= self.max_concurrency:
            out.append(f"provisioned_concurrency must be from 1 to max_concurrency ({self.max_concurrency}) "
                       f"(got {self.provisioned_concurrency})")
        return out

    def variant(self) -> dict:
        config = {"memory_size_in_mb": self.memory_mb, "max_concurrency": self.max_concurrency}
        if self.provisioned_concurrency is not None:
            config["provisioned_concurrency"] = self.provisioned_concurrency
        return {"serverless_config": config}

    def cost(self, prices: "PriceBook") -> CostLine:
        per_gb_second = prices.serverless_gb_second()
        if per_gb_second is None:
            return CostLine(None, None, None, None, "serverless: not in the price table")
        busy = per_gb_second * self.memory_mb / 1024
        warm = busy * (self.provisioned_concurrency or 0)
        # Provisioned concurrency is billed while deployed (priced here at the on-demand rate: an upper bound).
        return CostLine(warm * 3600, busy * self.max_concurrency * 3600, warm * SECONDS_PER_MONTH, busy,
                        "provisioned concurrency billed at the on-demand rate (an upper bound)"
                        if self.provisioned_concurrency else "")

    def size_label(self) -> str:
        return f"{self.memory_mb} MB"

    def count_label(self) -> str:
        return f"0-{self.max_concurrency} concurrent"

    def summary(self) -> Optional[str]:
        return f"serverless ({self.memory_mb} MB, up to {self.max_concurrency} at once)"

    def instances(self) -> Optional[tuple[str, int]]:
        return None

    @staticmethod
    def runs(config: dict) -> bool:
        return "ServerlessConfig" in config["ProductionVariants"][0]

    @classmethod
    def model_problems(cls, model: "ModelSpec") -> list[str]:
        out = []
        if model.container in ("tgi", "hf-inference-gpu"):
            out.append(f"container {model.container} needs a GPU; serverless hosting has none (use "
                       "hf-inference or hf-inference-cpu, or hosting=realtime)")
        if model.network_isolation:
            out.append("network_isolation cannot be used with serverless hosting (Serverless Inference supports "
                       "no network isolation: SageMaker Developer Guide, Serverless Inference, feature "
                       "exclusions); use hosting=realtime or async")
        # weights_gb unset (a model of your own): its size is unknown here; SageMaker fails it if it does not fit.
        if model.weights_gb is None:
            pass
        elif serverless_memory_needed_mb(model.weights_gb) > SERVERLESS_MEMORY_MB[-1]:
            out.append(f"about {model.weights_gb:g} GB of weights need ~"
                       f"{serverless_memory_needed_mb(model.weights_gb) / 1024:.1f} GB of memory; serverless "
                       f"hosting offers at most {SERVERLESS_MEMORY_MB[-1] // 1024} GB: use hosting=realtime")
        elif serverless_memory_needed_mb(model.weights_gb) > cls.from_model(model).memory_mb:
            out.append(f"about {model.weights_gb:g} GB of weights need ~"
                       f"{serverless_memory_needed_mb(model.weights_gb) / 1024:.1f} GB of memory; memory_mb is "
                       f"{cls.from_model(model).memory_mb}: raise it")
        return out


# Asynchronous Inference limits (SageMaker Runtime API reference, InvokeEndpointAsync): InvocationTimeoutSeconds
# 1..3600 (default 900), RequestTTLSeconds 60..21600 (default 6 h); AsyncInferenceClientConfig
# MaxConcurrentInvocationsPerInstance 1..1000; ProductionVariant InitialInstanceCount >= 1, so an endpoint that
# scales to zero starts with one instance and scales in once idle (Developer Guide, "Autoscale an asynchronous
# endpoint": MinCapacity 0 with target tracking on ApproximateBacklogSizePerInstance, plus a step policy on the
# HasBacklogWithoutCapacity metric so a job arriving at zero instances starts one).
JOB_TIMEOUT_SECONDS = (1, 3600)
JOB_TTL_SECONDS = (60, 21600)
MAX_CONCURRENT_INVOCATIONS = 1000


@dataclass(frozen=True)
class Async(_InstanceFleet):
    """SageMaker Asynchronous Inference on instances that scale on the job backlog, to zero when min_instances is 0.

    The job bucket (input, output and failure objects) is the stack's; ModelEndpoint takes it as a prop."""

    name: ClassVar[str] = "async"
    options: ClassVar[tuple[str, ...]] = ("min_instances", "max_instances", "target_backlog",
                                          "max_concurrent_invocations", "job_timeout_seconds", "job_ttl_seconds",
                                          "scale_in_cooldown_seconds", "scale_out_cooldown_seconds", "volume_size_gb")
    not_options: ClassVar[dict[str, str]] = {"target_invocations": "async scales on target_backlog",
                                             "memory_mb": "an instance's memory is its type's"}
    invoke_action: ClassVar[str] = "sagemaker:InvokeEndpointAsync"  # an async endpoint answers only that
    takes_jobs: ClassVar[bool] = True
    instance_type: str
    min_instances: int = 0
    max_instances: int = 1
    target_backlog: float = 5.0
    max_concurrent_invocations: int = 1  # per instance: one job holds the accelerator at a time
    job_timeout_seconds: int = 900  # InvocationTimeoutSeconds: how long one job may run on the model
    job_ttl_seconds: int = 21600  # RequestTTLSeconds: how long a job may wait in the queue
    scale_in_cooldown_seconds: int = 900
    scale_out_cooldown_seconds: int = 300
    startup_timeout_seconds: int = 600
    volume_size_gb: Optional[int] = None

    @classmethod
    def from_model(cls, model: "ModelSpec") -> "Async":
        return cls(instance_type=model.instance_type,
                   min_instances=0 if model.min_instances is None else model.min_instances,
                   max_instances=1 if model.max_instances is None else model.max_instances,
                   target_backlog=_kind_target(model, "target_backlog") if model.target_backlog is None
                   else model.target_backlog,
                   max_concurrent_invocations=model.max_concurrent_invocations,
                   job_timeout_seconds=model.job_timeout_seconds, job_ttl_seconds=model.job_ttl_seconds,
                   scale_in_cooldown_seconds=model.scale_in_cooldown_seconds,
                   scale_out_cooldown_seconds=model.scale_out_cooldown_seconds,
                   startup_timeout_seconds=model.startup_timeout_seconds, volume_size_gb=model.volume_size_gb)

    @property
    def scales_to_zero(self) -> bool:
        return self.min_instances == 0

    def problems(self) -> list[str]:
        out = []
        if not 0 <= self.min_instances <= self.max_instances <= MAX_INSTANCES or self.max_instances < 1:
            out.append(f"min_instances and max_instances must satisfy 0 <= min <= max <= {MAX_INSTANCES} with max "
                       f"at least 1 (got {self.min_instances} and {self.max_instances})")
        if not self.target_backlog > 0:
            out.append(f"target_backlog must be above 0 (got {self.target_backlog})")
        if not 1 <= self.max_concurrent_invocations <= MAX_CONCURRENT_INVOCATIONS:
            out.append(f"max_concurrent_invocations must be from 1 to {MAX_CONCURRENT_INVOCATIONS} "
                       f"(got {self.max_concurrent_invocations})")
        for name, (low, high) in (("job_timeout_seconds", JOB_TIMEOUT_SECONDS), ("job_ttl_seconds", JOB_TTL_SECONDS)):
            if not low <= getattr(self, name) <= high:
                out.append(f"{name} must be from {low} to {high} (got {getattr(self, name)})")
        for name in ("scale_in_cooldown_seconds", "scale_out_cooldown_seconds"):
            if not 0 <= getattr(self, name) <= 3600:
                out.append(f"{name} must be from 0 to 3600 (got {getattr(self, name)})")
        return out

    def variant(self) -> dict:
        # SageMaker wants at least one instance at creation; scaling in to min_instances follows once idle.
        return {"instance_type": self.instance_type, "initial_instance_count": max(1, self.min_instances),
                "container_startup_health_check_timeout_in_seconds": self.startup_timeout_seconds,
                "volume_size_in_gb": self.volume_size_gb}

    def cost(self, prices: "PriceBook") -> CostLine:
        price = prices.hourly(self.instance_type)
        if price is None:
            return CostLine(None, None, None, None, f"{self.instance_type}: not in the price table")
        note = "instances only while jobs wait or run; one runs after deploy until the first scale-in" \
            if self.scales_to_zero else ""
        return CostLine(price * self.min_instances, price * self.max_instances,
                        price * self.min_instances * HOURS_PER_MONTH, None, note)

    @property
    def request_seconds(self) -> int:
        return self.job_timeout_seconds  # a job may run as long as its invocation timeout, not one API call

    def summary(self) -> Optional[str]:
        return f"as async jobs on {self.min_instances}-{self.max_instances} x {self.instance_type} (scaled on the " \
               "backlog)"

    @staticmethod
    def runs(config: dict) -> bool:
        return "AsyncInferenceConfig" in config

    def function_environment(self) -> dict:
        return {"MODEL_HOSTING": "async", "JOB_TIMEOUT_SECONDS": str(self.job_timeout_seconds),
                "JOB_TTL_SECONDS": str(self.job_ttl_seconds)}

    @staticmethod
    def model_problems(model: "ModelSpec") -> list[str]:
        if model.protocol == "jumpstart":
            return ["hosting=async serves this app's own image code, not the JumpStart protocol"]
        return []

    def scale(self, endpoint) -> None:
        """The construct hook: scaling on the job backlog (to zero when min_instances is 0)."""
        if self.autoscaled:
            endpoint.autoscale_on_backlog(self.min_instances, self.max_instances, self.target_backlog,
                                          scale_in_cooldown_seconds=self.scale_in_cooldown_seconds,
                                          scale_out_cooldown_seconds=self.scale_out_cooldown_seconds)


# Memory per vCPU of each instance family (GB), for the shared-instance fit check: g5.xlarge 16 GB on 4 vCPUs, an
# m5 4 GB, a c5 2 GB, an r5 8 GB per vCPU (instance type pages); the p families round down.
MEMORY_GB_PER_VCPU = {"t2": 4, "m4": 4, "m5": 4, "m5d": 4, "m6i": 4, "m6id": 4, "m7i": 4, "c4": 1.875, "c5": 2,
                      "c5d": 2, "c6i": 2, "c6id": 2, "c7i": 2, "r5": 8, "r5d": 8, "r6i": 8, "r6id": 8, "r7i": 8,
                      "g4dn": 4, "g5": 4, "g6": 4, "g6e": 8, "p3": 7.5, "p3dn": 8, "p4d": 12, "p4de": 12, "p5": 10,
                      "p5e": 10, "p5en": 10}


@dataclass(frozen=True)
class Shared(HostingMode):
    """One model's inference component on the deployment's shared endpoint: what one copy reserves, and how many
    copies run (autoscaled on SageMakerInferenceComponentInvocationsPerCopy when max_instances > min_instances;
    min_instances 0 scales to zero copies when idle, and a request that finds none starts one).

    Scale to zero (SageMaker Developer Guide, "Scale an endpoint to zero instances"): only endpoints that host
    inference components can; the endpoint's variant needs ManagedInstanceScaling with MinInstanceCount 0, the
    component a scalable target with minimum 0, and, since target tracking cannot scale out from zero copies, a step
    policy on an alarm of NoCapacityInvocationFailures (emitted when a request finds no copy). A component cannot be
    created with 0 copies (reported: "copy count an integer larger than 0"), so it starts with one and scales in."""

    name: ClassVar[str] = "shared"
    feature: ClassVar[Optional[str]] = "hosting=shared (inference components)"
    options: ClassVar[tuple[str, ...]] = ("min_instances", "max_instances", "target_invocations", "memory_mb",
                                          "cpu_cores", "accelerators", "scale_in_cooldown_seconds",
                                          "scale_out_cooldown_seconds")
    not_options: ClassVar[dict[str, str]] = {"volume_size_gb": "the shared endpoint's instances have it",
                                             "target_backlog": "shared copies scale on target_invocations"}
    instance_type: str
    memory_mb: int = SHARED_MEMORY_MB
    cpu_cores: float = 1.0
    accelerators: Optional[int] = None
    min_instances: int = 1  # copies
    max_instances: int = 1
    target_invocations: float = 10.0
    scale_in_cooldown_seconds: int = 900
    scale_out_cooldown_seconds: int = 300
    startup_timeout_seconds: int = 600

    @classmethod
    def from_model(cls, model: "ModelSpec") -> "Shared":
        low = 1 if model.min_instances is None else model.min_instances
        return cls(instance_type=model.instance_type,
                   memory_mb=SHARED_MEMORY_MB if model.memory_mb is None else model.memory_mb,
                   cpu_cores=model.cpu_cores,
                   accelerators=model.accelerators if model.accelerators is not None
                   else (1 if model.gpu and model.container != "hf-inference-cpu" else None),
                   # min 0 alone means "up to one copy when used".
                   min_instances=low, max_instances=max(low, 1) if model.max_instances is None
                   else model.max_instances,
                   target_invocations=_kind_target(model, "target_invocations") if model.target_invocations is None
                   else model.target_invocations,
                   scale_in_cooldown_seconds=model.scale_in_cooldown_seconds,
                   scale_out_cooldown_seconds=model.scale_out_cooldown_seconds,
                   startup_timeout_seconds=model.startup_timeout_seconds)

    @property
    def autoscaled(self) -> bool:
        return self.max_instances > self.min_instances

    @property
    def initial_copies(self) -> int:
        return max(1, self.min_instances)

    def problems(self) -> list[str]:
        out = []
        if not (0 <= self.min_instances <= self.max_instances <= MAX_INSTANCES and self.max_instances >= 1):
            out.append(f"copies (min_instances, max_instances) must satisfy 0 <= min <= max <= {MAX_INSTANCES}, "
                       f"max >= 1 (got {self.min_instances} and {self.max_instances})")
        if self.memory_mb < 128:
            out.append(f"memory_mb must be at least 128 for a shared model (got {self.memory_mb})")
        if not self.cpu_cores >= 0.25:
            out.append(f"cpu_cores must be at least 0.25 (got {self.cpu_cores})")
        if self.accelerators is not None and self.accelerators < 1:
            out.append(f"accelerators must be at least 1 when set (got {self.accelerators})")
        if not self.target_invocations > 0:
            out.append(f"target_invocations must be above 0 (got {self.target_invocations})")
        return out

    def requirements(self) -> dict:
        """CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty keywords for one copy."""
        out = {"min_memory_required_in_mb": self.memory_mb, "number_of_cpu_cores_required": self.cpu_cores}
        if self.accelerators:
            out["number_of_accelerator_devices_required"] = self.accelerators
        return out

    def cost(self, prices: "PriceBook") -> CostLine:
        """A component's own share is not billed: the shared endpoint's instances are (ops/cost.py bills them once)."""
        return CostLine(0.0, 0.0, 0.0, None, "on the shared endpoint, billed there")

    def size_label(self) -> str:
        return f"{self.memory_mb} MB, {self.cpu_cores:g} cores" + (
            f", {self.accelerators} GPU" if self.accelerators else "")

    def count_label(self) -> str:
        if self.autoscaled:
            return f"{self.min_instances}-{self.max_instances} copies"
        return f"{self.min_instances} cop{'y' if self.min_instances == 1 else 'ies'}"

    def summary(self) -> Optional[str]:
        return (f"as inference component of a shared endpoint ({self.min_instances}-{self.max_instances} copies, "
                f"{self.memory_mb} MB each" + ("; scales to zero when idle" if self.min_instances == 0 else "") + ")")

    def instances(self) -> Optional[tuple[str, int]]:
        return None  # the shared endpoint's instances are counted once (settings.shared_instances)

    @staticmethod
    def runs(config: dict) -> bool:
        return "ModelName" not in config["ProductionVariants"][0]  # components name the models, not the variant


def shared_fit_problems(models, instances: int, vcpus_of, gpus_of) -> list[str]:
    """The shared models' minimum copies must fit on the shared endpoint's instances, each copy on one instance.
    vcpus_of / gpus_of: instance type -> vCPUs / GPUs (deployment.model_catalog)."""
    shared = [(m, Shared.from_model(m)) for m in models if m.hosting == "shared"]
    if not shared:
        return []
    types = sorted({config.instance_type for _, config in shared})
    if len(types) > 1:
        return [f"shared models must name one instance_type, the shared endpoint's (got {', '.join(types)})"]
    instance_type = types[0]
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    capacity = {"memory_mb": int(vcpus_of(instance_type) * MEMORY_GB_PER_VCPU.get(family, 0) * 1024),
                "cpu_cores": vcpus_of(instance_type), "accelerators": gpus_of(instance_type)}
    out = []
    if not 1 <= instances <= MAX_INSTANCES:
        return out  # SharedFleet.problems says so
    for field_name, label in (("memory_mb", "MB of memory"), ("cpu_cores", "CPU cores"),
                              ("accelerators", "accelerators (GPUs)")):
        if not capacity[field_name] and field_name != "accelerators":
            return out  # an instance family without a known size: SageMaker checks it at deploy
        for model, config in shared:
            one = getattr(config, field_name) or 0
            if one > capacity[field_name]:
                out.append(f"model {model.name!r}: one copy needs {one:g} {label}; one {instance_type} has "
                           f"{capacity[field_name]:g}")
        needed = sum((getattr(config, field_name) or 0) * config.min_instances for _, config in shared)
        if needed > capacity[field_name] * instances:
            out.append(f"the shared models' minimum copies need {needed:g} {label}; {instances} x {instance_type} "
                       f"has {capacity[field_name] * instances:g}: raise shared_instances or lower the copies")
    return out


@dataclass(frozen=True)
class SharedFleet:
    """The shared endpoint's instances: `initial` to start with, up to `maximum` as the copies need room (SageMaker
    managed instance scaling), down to 0 when every copy has scaled in if any shared model may scale to zero."""

    instance_type: str
    initial: int
    maximum: int
    to_zero: bool  # a shared model may scale to zero copies: MinInstanceCount 0
    all_to_zero: bool  # every shared model may: idle, no instance runs

    @classmethod
    def of(cls, models, instances: int, max_instances: Optional[int]) -> Optional["SharedFleet"]:
        shared = [Shared.from_model(m) for m in models if m.hosting == "shared"]
        if not shared:
            return None
        return cls(shared[0].instance_type, instances, instances if max_instances is None else max_instances,
                   any(c.min_instances == 0 for c in shared), all(c.min_instances == 0 for c in shared))

    @property
    def minimum(self) -> int:
        return 0 if self.to_zero else self.initial

    @property
    def managed(self) -> bool:
        """Managed instance scaling on: instances follow the copies (between minimum and maximum)."""
        return self.to_zero or self.maximum > self.initial

    def problems(self) -> list[str]:
        if not 1 <= self.initial <= self.maximum <= MAX_INSTANCES:
            return [f"shared_instances and shared_max_instances must satisfy 1 <= shared_instances <= "
                    f"shared_max_instances <= {MAX_INSTANCES} (got {self.initial} and {self.maximum})"]
        return []

    def idle_instances(self) -> int:
        """Instances billed with no traffic: none if every shared model scales to zero, else the initial count (an
        estimate: managed scaling may pack the remaining copies onto fewer)."""
        return 0 if self.all_to_zero else self.initial


HOSTING_MODES = {mode.name: mode for mode in (Realtime, Serverless, Async, Shared)}


def deployed_mode(config: dict) -> str:
    """The hosting mode a DescribeEndpointConfig answer shows: the modes asked latest registered first, so realtime
    (registered first: it is what none of the others is) answers last."""
    return next(mode.name for mode in reversed(list(HOSTING_MODES.values())) if mode.runs(config))


def hosting_of(model: "ModelSpec"):
    """The model's hosting config (Realtime, Serverless, Async or Shared), or None for an existing endpoint."""
    if model.existing_endpoint is not None or model.hosting not in HOSTING_MODES:
        return None
    return HOSTING_MODES[model.hosting].from_model(model)


def hosting_options() -> dict[str, tuple[str, ...]]:
    """Every hosting option (a model field some mode reads, or adds) -> the modes that read it, in registration
    order."""
    out: dict[str, tuple[str, ...]] = {}
    for mode in HOSTING_MODES.values():
        for option in (*mode.options, *added_options_of(mode)):
            out[option] = out.get(option, ()) + (mode.name,)
    return out


def added_options_of(mode) -> dict[str, ModeOption]:
    return mode.added_options


def added_options() -> dict[str, ModeOption]:
    """Every model field a registered mode adds beyond ModelSpec's (two modes adding one name share its first)."""
    out: dict[str, ModeOption] = {}
    for mode in HOSTING_MODES.values():
        for name, option in added_options_of(mode).items():
            out.setdefault(name, option)
    return out


def hosting_problems(model: "ModelSpec") -> list[str]:
    """Every problem of a model's hosting settings, each starting with the model's name: the mode's own checks
    (its options' bounds, what a model cannot be under it), and every hosting option of other modes the model sets
    (a field away from ModelSpec's default), said with the modes that read it."""
    from deployment.model_catalog import ModelSpec

    p = f"model {model.name!r}: "
    if model.hosting not in HOSTING_MODES:
        return [p + f"hosting {model.hosting!r} must be one of {', '.join(HOSTING_MODES)}"]
    mode = HOSTING_MODES[model.hosting]
    config = hosting_of(model)
    out = [p + problem for problem in config.problems()] if config is not None else []
    out += [p + problem for problem in mode.model_problems(model)]
    added = added_options()
    for option, modes in hosting_options().items():
        if option in mode.options or option in added_options_of(mode):
            continue
        if option in added:
            if model.mode_options.get(option, added[option].default) == added[option].default:
                continue
        elif getattr(model, option) == ModelSpec.__dataclass_fields__[option].default:
            continue
        why = mode.not_options.get(option)
        out.append(p + f"{option} applies to hosting={' or '.join(modes)} only" + (f" ({why})" if why else ""))
    return out
