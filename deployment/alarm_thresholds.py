"""When the deployment's alarms fire (settings alarm_*, stacks/monitoring.py): plain data, no aws_cdk, so settings
and local mode read it without starting the CDK."""

from __future__ import annotations

from dataclasses import dataclass

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@dataclass(frozen=True)
class AlarmThresholds:
    """When each alarm fires (settings alarm_*; docs/operating.md)."""

    api_5xx_percent: float = 5.0  # of the API's requests over 5 minutes
    endpoint_5xx: int = 5  # model invocations that failed in 5 minutes
    latency_percent: float = 80.0  # model latency p90 as a share of the time a request has
    gpu_memory_percent: float = 90.0  # of one GPU's memory (GPUMemoryUtilization / GPUs)
    job_age_seconds: int = 1800  # the oldest queued job of an async model
    instance_hours: float = 8.0  # a day's instance-hours beyond what the minimum instances run

    def problems(self) -> list[str]:
        out = []
        for name, low, high in (("api_5xx_percent", 0, 100), ("latency_percent", 1, 100),
                                ("gpu_memory_percent", 1, 100)):
            if not low < getattr(self, name) <= high:
                out.append(f"alarm_{name} must be above {low} and at most {high} (got {getattr(self, name)})")
        if self.endpoint_5xx < 1:
            out.append(f"alarm_endpoint_5xx must be at least 1 (got {self.endpoint_5xx})")
        if not 60 <= self.job_age_seconds <= 21600:
            out.append(f"alarm_job_age_seconds must be from 60 to 21600 (got {self.job_age_seconds})")
        if not 0.5 <= self.instance_hours <= 2400:
            out.append(f"alarm_instance_hours must be from 0.5 to 2400 (got {self.instance_hours:g})")
        return out
