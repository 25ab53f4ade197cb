"""A hosting mode that is not in the product: a pinned fleet (a fixed number of instances, never autoscaled), written
the way a new mode is added: one class with the mode interface of deployment.hosting, registered in HOSTING_MODES.
Tests register it and check that settings, the stack, monitoring and the cost report needed no edit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from deployment.hosting import HOURS_PER_MONTH, MAX_INSTANCES, CostLine, HostingMode, ModeOption


@dataclass(frozen=True)
class Pinned(HostingMode):
    name: ClassVar[str] = "pinned"
    options: ClassVar[tuple[str, ...]] = ("volume_size_gb",)
    # An option no other mode has: a field of its own, documented with it.
    added_options: ClassVar[dict[str, ModeOption]] = {
        "pinned_instances": ModeOption(int, 2, "how many instances the fleet always runs (1..100)")}
    not_options: ClassVar[dict[str, str]] = {
        "min_instances": "a pinned fleet does not scale: set pinned_instances",
        "max_instances": "a pinned fleet does not scale: set pinned_instances"}
    autoscaled: ClassVar[bool] = False
    instance_type: str
    count: int = 2
    startup_timeout_seconds: int = 600
    volume_size_gb: Optional[int] = None

    @classmethod
    def from_model(cls, model) -> "Pinned":
        return cls(instance_type=model.instance_type, count=model.option("pinned_instances"),
                   startup_timeout_seconds=model.startup_timeout_seconds, volume_size_gb=model.volume_size_gb)

    def problems(self) -> list[str]:
        return [] if 1 <= self.count <= MAX_INSTANCES else [f"pinned_instances must be from 1 to {MAX_INSTANCES} "
                                                            f"(got {self.count})"]

    def variant(self) -> dict:
        return {"instance_type": self.instance_type, "initial_instance_count": self.count,
                "container_startup_health_check_timeout_in_seconds": self.startup_timeout_seconds,
                "volume_size_in_gb": self.volume_size_gb}

    def cost(self, prices) -> CostLine:
        price = prices.hourly(self.instance_type)
        if price is None:
            return CostLine(None, None, None, None, f"{self.instance_type}: not in the price table")
        return CostLine(price * self.count, price * self.count, price * self.count * HOURS_PER_MONTH, None)

    def size_label(self) -> str:
        return self.instance_type

    def count_label(self) -> str:
        return f"{self.count} (pinned)"

    def summary(self) -> Optional[str]:
        return f"on {self.count} x {self.instance_type} (pinned)"

    def instances(self) -> Optional[tuple[str, int]]:
        return self.instance_type, self.count

    @staticmethod
    def runs(config: dict) -> bool:
        return False  # never told apart from realtime in a deployed config
