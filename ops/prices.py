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

from deployment.hosting import HOURS_PER_MONTH  # noqa: F401 (the one definition, re-exported for ops)

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


PRICED_REGIONS = tuple(sorted(HOURLY_USD))  # the regions this table prices; others print as unknown, or --live

# The AWS Price List Query API (GetProducts) answers from us-east-1 for every region ("All pricing APIs are hosted in
# IAD", the SageMaker inference samples' pricing client; the Terraform/Pulumi pricing data source: "only available in
# a us-east-1 or ap-south-1 provider"). SageMaker hosting instances are the products of family "ML Instance" whose
# `platoinstancetype` is "Hosting", named by `instanceName` (ml.g5.xlarge) and `regionCode` (the same samples'
# filters); the on-demand price is terms.OnDemand.*.priceDimensions.*.pricePerUnit.USD, per "Hrs".
PRICE_LIST_REGION = "us-east-1"
PRICE_LIST_SOURCE = "AWS Price List API, on-demand SageMaker hosting, asked just now"


class PriceListError(Exception):
    """The Price List API could not be asked (no credentials, no pricing:GetProducts, no network): in words."""


class PriceList:
    """On-demand SageMaker hosting prices of any region and instance type from the AWS Price List API, one
    GetProducts call per type and region (cached). `client` is a boto3 "pricing" client in PRICE_LIST_REGION."""

    def __init__(self, client):
        self._client = client
        self._known: dict = {}

    def hourly(self, region: Optional[str], instance_type: str) -> Optional[float]:
        """USD per instance-hour; None when AWS lists no such product (or several prices for it: never guessed)."""
        key = (region or "", instance_type)
        if key not in self._known:
            self._known[key] = self._ask(*key)
        return self._known[key]

    def _ask(self, region: str, instance_type: str) -> Optional[float]:
        import json

        from botocore.exceptions import BotoCoreError, ClientError

        filters = [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in (
            ("productFamily", "ML Instance"), ("regionCode", region), ("instanceName", instance_type),
            ("platoinstancetype", "Hosting"))]
        try:
            pages = self._client.get_paginator("get_products").paginate(ServiceCode="AmazonSageMaker",
                                                                           Filters=filters)
            products = [json.loads(item) for page in pages for item in page.get("PriceList", [])]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise PriceListError(f"the AWS Price List API refused ({code}: {error.response['Error'].get('Message')})"
                                 "; your credentials need pricing:GetProducts") from None
        except BotoCoreError as error:
            raise PriceListError(f"the AWS Price List API could not be asked ({error})") from None
        found = {float(dimension["pricePerUnit"]["USD"])
                 for product in products for term in product.get("terms", {}).get("OnDemand", {}).values()
                 for dimension in term.get("priceDimensions", {}).values()
                 if dimension.get("unit", "").lower() in ("hrs", "hours") and "USD" in dimension.get("pricePerUnit", {})}
        found.discard(0.0)
        return found.pop() if len(found) == 1 else None


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
    """One region's prices, as deployment.hosting's modes read them: the Price List API's when `live` is given (fresh, any
    region), else this table's."""

    region: Optional[str]
    live: Optional[PriceList] = None

    def hourly(self, instance_type: str) -> Optional[float]:
        if self.live is not None:
            return self.live.hourly(self.region, instance_type)
        return hourly(self.region, instance_type)

    def serverless_gb_second(self) -> Optional[float]:
        return serverless_gb_second(self.region)
