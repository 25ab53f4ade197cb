"""On-demand prices of SageMaker real-time hosting instances, per region and instance type, in USD per hour.

Source: the Amazon SageMaker AI pricing page (real-time inference, on-demand), as quoted by public write-ups in
October 2025 to March 2026 (ml.g5.xlarge "about $1.41/hour" in us-east-1 as of October 2025, ml.m5.xlarge $0.269);
the ml.g4dn.xlarge figure is the one this project's README has carried since its first release; ml.m5.large
($0.115) and Serverless Inference ($0.0000200 per second per GB of memory) from a public price digest quoting the
same page. Recorded 2026-11-22. Prices change and differ by region: a type or region not in this table is reported as unknown, never
guessed. Check https://aws.amazon.com/sagemaker/pricing/ before relying on a figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from stacks.hosting import HOURS_PER_MONTH  # noqa: F401 (the one definition, re-exported for ops)

SOURCE = "Amazon SageMaker AI pricing page, real-time and serverless inference on-demand (recorded 2026-11-22)"

HOURLY_USD = {
    "us-east-1": {
        "ml.g5.xlarge": 1.408,
        "ml.g5.2xlarge": 1.515,
        "ml.g4dn.xlarge": 0.736,
        "ml.m5.xlarge": 0.269,
        "ml.m5.large": 0.115,
    },
}
# Interface VPC endpoints (AWS PrivateLink), USD per endpoint per Availability Zone per hour, billed while they exist
# (each partial hour as a full one), plus $0.01 per GB processed (left out: cents at this API's payload sizes); the
# S3 gateway endpoint is free. Source: the AWS PrivateLink pricing page ("billed for each hour that your VPC endpoint
# remains provisioned in each Availability Zone"), $0.01 per hour in us-east-1 as quoted by public cost guides in
# 2026. Recorded 2026-11-24.
INTERFACE_ENDPOINT_HOURLY_USD = {"us-east-1": 0.01}
# AWS WAF (waf=true): USD per web ACL per month, per rule per month, per million requests inspected; the same in
# every region ("The pricing for AWS WAF is consistent across all AWS Regions", AWS Networking & Content Delivery
# blog, "Cost-effective ways for securing your web applications using AWS WAF"); AWS's baseline managed rule groups
# add no fee of their own. Figures from the AWS WAF pricing page as quoted by public cost guides in 2026. Recorded
# 2026-11-24.
WAF_WEB_ACL_MONTHLY_USD = 5.00
WAF_RULE_MONTHLY_USD = 1.00
WAF_PER_MILLION_REQUESTS_USD = 0.60
WAF_RULES = 2  # the web ACL's rules (stacks/api_firewall.py: rate limit, common rule set; a test keeps them equal)
# Serverless Inference compute, USD per second per GB of configured memory (billed per millisecond of inference);
# data processed in and out ($0.016/GB) is left out: cents per thousand requests at this API's payload sizes.
SERVERLESS_GB_SECOND_USD = {"us-east-1": 0.0000200}


def hourly(region: Optional[str], instance_type: str) -> Optional[float]:
    """USD per instance-hour, or None when the table does not know the region or type."""
    return HOURLY_USD.get(region or "", {}).get(instance_type)


def interface_endpoint_hourly(region: Optional[str]) -> Optional[float]:
    """USD per interface endpoint per Availability Zone per hour, or None when the table does not know the region."""
    return INTERFACE_ENDPOINT_HOURLY_USD.get(region or "")


def serverless_gb_second(region: Optional[str]) -> Optional[float]:
    """USD per second of serverless inference per GB of memory, or None when the table does not know the region."""
    return SERVERLESS_GB_SECOND_USD.get(region or "")


@dataclass(frozen=True)
class PriceBook:
    """One region's prices, as stacks.hosting's modes read them."""

    region: Optional[str]

    def hourly(self, instance_type: str) -> Optional[float]:
        return hourly(self.region, instance_type)

    def serverless_gb_second(self) -> Optional[float]:
        return serverless_gb_second(self.region)
