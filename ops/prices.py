"""On-demand prices of SageMaker real-time hosting instances, per region and instance type, in USD per hour.

Source: the Amazon SageMaker AI pricing page (real-time inference, on-demand), as quoted by public write-ups in
October 2025 to March 2026 (ml.g5.xlarge "about $1.41/hour" in us-east-1 as of October 2025, ml.m5.xlarge $0.269);
the ml.g4dn.xlarge figure is the one this project's README has carried since its first release. Recorded
2026-11-22. Prices change and differ by region: a type or region not in this table is reported as unknown, never
guessed. Check https://aws.amazon.com/sagemaker/pricing/ before relying on a figure.
"""

from __future__ import annotations

from typing import Optional

SOURCE = "Amazon SageMaker AI pricing page, real-time inference on-demand (recorded 2026-11-22)"
HOURS_PER_MONTH = 730

HOURLY_USD = {
    "us-east-1": {
        "ml.g5.xlarge": 1.408,
        "ml.g5.2xlarge": 1.515,
        "ml.g4dn.xlarge": 0.736,
        "ml.m5.xlarge": 0.269,
    },
}


def hourly(region: Optional[str], instance_type: str) -> Optional[float]:
    """USD per instance-hour, or None when the table does not know the region or type."""
    return HOURLY_USD.get(region or "", {}).get(instance_type)
