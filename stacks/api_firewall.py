"""waf=true: an AWS WAF web ACL in front of the API stage, for abuse the API key cannot stop (a leaked key used from
many places, floods that never reach the usage plan's count, common exploit payloads).

Two rules: a rate-based rule per client IP (waf_rate_limit requests in any 5 minutes, then 429 in the API's error
shape until the rate falls), and AWS's managed common rule set (AWSManagedRulesCommonRuleSet) with its
SizeRestrictions_BODY rule counted, not blocking: that rule blocks bodies over 8 KB (AWS WAF Developer Guide, "Core
rule set (CRS) managed rule group"; public WAF setups count it for the same reason), and the API's own body limits
(embeddings batches, chat conversations) are above it and enforced by the Lambdas. Its body rules for scripts and
remote file inclusion still block: a prompt quoting HTML or a URL path may trip them (unverified without traffic). A request the managed rules block
gets WAF's own 403 (a managed rule's block cannot carry our body without overriding each of its rules). Priced in
ops/prices.py (web ACL, rules, requests).
"""

from __future__ import annotations

import json
from typing import Mapping, Optional

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct
from model_api import errors as _errors

MIN_RATE_LIMIT, MAX_RATE_LIMIT = 10, 2_000_000_000  # WAF's bounds for a rate-based rule's limit
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
OVER_8_KB = "SizeRestrictions_BODY"
# A rate-based rule counts the last 5 minutes and lifts the block once the address falls below the limit (checked
# every few tens of seconds): a minute is a fair first wait.
RETRY_AFTER_SECONDS = 60


class ApiFirewall(Construct):
    """An AWS WAF web ACL (regional) associated with an API Gateway stage.

    Props: stage (apigw.Stage), rate_limit (requests per client IP in any 5 minutes, 10..2e9), metric_prefix (the
    CloudWatch metric names of the ACL and its rules), response_headers (added to the 429, e.g. the API's static
    CORS headers so a web page can read why it was refused; WAF sends them as given: only inserted request headers
    get its x-amzn-waf- prefix: AWS WAF Developer Guide, "Custom responses for Block actions" and CustomHTTPHeader).
    The 429 always says Retry-After: 60.
    Attributes: web_acl, association.
    """

    def __init__(self, scope: Construct, construct_id: str, *, stage: apigw.Stage, rate_limit: int = 500,
                 metric_prefix: str = "ModelApi", response_headers: Optional[Mapping[str, str]] = None):
        super().__init__(scope, construct_id)
        if not MIN_RATE_LIMIT <= rate_limit <= MAX_RATE_LIMIT:
            raise ValueError(f"ApiFirewall {construct_id}: rate_limit must be from {MIN_RATE_LIMIT} to "
                             f"{MAX_RATE_LIMIT}")

        def visibility(name: str):
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"{metric_prefix}{name}", sampled_requests_enabled=True)

        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(response_headers or {})}

        def answer(status: int, key: str):
            return wafv2.CfnWebACL.RuleActionProperty(block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                    response_code=status, custom_response_body_key=key,
                    response_headers=[wafv2.CfnWebACL.CustomHTTPHeaderProperty(name=name, value=value)
                                      for name, value in headers.items()])))

        self.web_acl = wafv2.CfnWebACL(
            self, "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("WebAcl"),
            description="Rate limit per IP and the AWS common rule set in front of the model API",
            custom_response_bodies={
                "rate_limited": _body("rate_limited", "too many requests from this address; slow down and retry "
                                                      "in a few minutes"),
            },
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp", priority=0,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=rate_limit, aggregate_key_type="IP")),
                    action=answer(429, "rate_limited"),
                    visibility_config=visibility("RateLimitPerIp")),
                wafv2.CfnWebACL.RuleProperty(
                    name="CommonRules", priority=1,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name=COMMON_RULE_SET,
                            rule_action_overrides=[wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=OVER_8_KB, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}))])),
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    visibility_config=visibility("CommonRules")),
            ],
        )
        stack = Stack.of(self)
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", web_acl_arn=self.web_acl.attr_arn,
            resource_arn=f"arn:{stack.partition}:apigateway:{stack.region}::/restapis/{stage.rest_api.rest_api_id}"
                         f"/stages/{stage.stage_name}")
        self.association.node.add_dependency(stage)


def _body(code: str, message: str) -> wafv2.CfnWebACL.CustomResponseBodyProperty:
    return wafv2.CfnWebACL.CustomResponseBodyProperty(
        content_type="APPLICATION_JSON",
        content=json.dumps(_errors.error_body(code, message), separators=(",", ":")))
