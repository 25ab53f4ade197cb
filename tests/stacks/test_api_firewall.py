"""waf=true: the web ACL (ApiFirewall) alone and in the app, its cost, and cdk-nag's APIG3 satisfied, not waived."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk.assertions import Template

from deployment.settings import SettingsError, load_settings
from ops import cost, prices
from stacks.api_firewall import ApiFirewall


def firewall(**props):
    stack = Stack(App(), "T")
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET")
    made = ApiFirewall(stack, "Firewall", stage=api.deployment_stage, **props)
    return made, Template.from_stack(stack).to_json()


def test_a_rate_limit_per_ip_answers_429_in_the_apis_error_shape_and_the_common_rules_block():
    _, template = firewall(rate_limit=300, metric_prefix="Mine")
    (acl,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    rate, common = acl["Rules"]
    assert rate["Statement"]["RateBasedStatement"] == {"Limit": 300, "AggregateKeyType": "IP"}
    assert rate["Action"]["Block"]["CustomResponse"] == {"ResponseCode": 429, "CustomResponseBodyKey": "rate_limited",
                                                         "ResponseHeaders": [{"Name": "Retry-After", "Value": "60"}]}
    body = json.loads(acl["CustomResponseBodies"]["rate_limited"]["Content"])
    assert body["error"]["code"] == "rate_limited" and set(body) == {"error"}
    assert acl["CustomResponseBodies"]["rate_limited"]["ContentType"] == "APPLICATION_JSON"
    group = common["Statement"]["ManagedRuleGroupStatement"]
    assert (group["VendorName"], group["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    # Bodies over 8 KB are the API's own business (its limits are larger): counted, not blocked.
    assert group["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    assert common["OverrideAction"] == {"None": {}}
    assert {r["VisibilityConfig"]["MetricName"] for r in acl["Rules"]} == {"MineRateLimitPerIp", "MineCommonRules"}
    assert acl["VisibilityConfig"] == {"CloudWatchMetricsEnabled": True, "MetricName": "MineWebAcl",
                                       "SampledRequestsEnabled": True}
    assert len(acl["Rules"]) == prices.WAF_RULES  # what make cost bills for


def test_the_web_acl_is_associated_with_the_stage():
    _, template = firewall()
    (association,) = [r["Properties"] for r in template["Resources"].values()
                      if r["Type"] == "AWS::WAFv2::WebACLAssociation"]
    arn = json.dumps(association["ResourceArn"])
    assert ":apigateway:" in arn and "/restapis/" in arn and "/stages/" in arn
    assert association["WebACLArn"]["Fn::GetAtt"][1] == "Arn"


def test_rate_limits_outside_wafs_bounds_are_refused():
    with pytest.raises(ValueError, match="^" + re.escape(
            "ApiFirewall Firewall: rate_limit must be from 10 to 2000000000") + "$"):
        firewall(rate_limit=9)
    with pytest.raises(SettingsError, match=r"waf_rate_limit must be from 10 to 2000000000 requests per 5 minutes "
                                            r"\(got 5\)"):
        load_settings(["waf_rate_limit=5"])


def test_the_app_attaches_it_only_when_asked_and_then_needs_no_waf_waiver(synth_assembly, synth, template):
    protected = synth(waf="true", waf_rate_limit="1000")
    kinds = [r["Type"] for r in protected["Resources"].values()]
    assert kinds.count("AWS::WAFv2::WebACL") == 1 and kinds.count("AWS::WAFv2::WebACLAssociation") == 1
    assert not any(r["Type"].startswith("AWS::WAFv2") for r in template["Resources"].values())
    metadata = json.dumps(json.loads(open(f"{synth_assembly(waf='true', waf_rate_limit='1000').directory}/"
                                          "SageMakerModelApi.metadata.json").read()))
    assert "AwsSolutions-APIG3" not in metadata  # nag's WAF rule is met, not acknowledged


@pytest.mark.parametrize("origins,allowed", [("https://app.example.com", "https://app.example.com"), ("*", "*"),
                                             ("https://app.example.com,http://localhost:3000", None)])
def test_the_429_carries_the_apis_static_cors_headers_so_a_page_can_read_it(synth, origins, allowed):
    protected = synth(waf="true", cors_origins=origins)
    (acl,) = [r["Properties"] for r in protected["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"]
    headers = {h["Name"]: h["Value"] for h in acl["Rules"][0]["Action"]["Block"]["CustomResponse"]["ResponseHeaders"]}
    assert headers.get("Access-Control-Allow-Origin") == allowed  # several origins: a static answer names none
    assert headers["Retry-After"] == "60"
    if allowed:
        assert headers["Access-Control-Expose-Headers"] == "Retry-After, X-Request-Id, X-Seed"


def test_cost_shows_the_web_acl_monthly():
    row = next(r for r in cost.rows(load_settings(["waf=true"]), "us-east-1") if r.model == "waf")
    assert row.idle_monthly == pytest.approx(5 + 2 * 1) and "$0.60 per million requests" in row.note
    assert not any(r.model == "waf" for r in cost.rows(load_settings([]), "us-east-1"))
