"""domain_name + certificate_arn (+ hosted_zone_id): the API at the user's own domain."""

from __future__ import annotations

import pytest

from deployment.settings import SettingsError, load_settings

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
DOMAIN = {"domain_name": "api.example.com", "certificate_arn": CERTIFICATE}


def of_type(template, kind):
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_the_stage_is_mapped_to_a_regional_tls12_domain_and_the_zone_gets_an_alias(synth):
    template = synth(**DOMAIN, hosted_zone_id="Z0123456789ABCDEFGHIJ")
    (domain,) = of_type(template, "AWS::ApiGateway::DomainName")
    assert domain == {"DomainName": "api.example.com", "EndpointConfiguration": {"Types": ["REGIONAL"]},
                      "RegionalCertificateArn": CERTIFICATE, "SecurityPolicy": "TLS_1_2"}
    (mapping,) = of_type(template, "AWS::ApiGateway::BasePathMapping")
    assert "BasePath" not in mapping and "Stage" in mapping  # the routes at the domain's root
    (record,) = of_type(template, "AWS::Route53::RecordSet")
    assert (record["HostedZoneId"], record["Name"], record["Type"]) == ("Z0123456789ABCDEFGHIJ", "api.example.com",
                                                                      "A")
    assert record["AliasTarget"]["DNSName"]["Fn::GetAtt"][1] == "RegionalDomainName"
    assert template["Outputs"]["CustomDomainUrl"]["Value"] == "https://api.example.com/"


def test_without_a_zone_the_output_says_where_to_point_dns(synth, template):
    mine = synth(**DOMAIN)
    assert of_type(mine, "AWS::Route53::RecordSet") == []
    target = mine["Outputs"]["CustomDomainTarget"]
    assert target["Value"]["Fn::GetAtt"][1] == "RegionalDomainName" and "Point your domain's DNS" in \
        target["Description"]
    assert of_type(template, "AWS::ApiGateway::DomainName") == [] and "CustomDomainUrl" not in template["Outputs"]


def test_domain_settings_are_checked_together_at_synth():
    with pytest.raises(SettingsError) as caught:
        load_settings(["domain_name=API.example", "hosted_zone_id=zone1", "region=eu-west-1",
                       "certificate_arn=" + CERTIFICATE])
    message = str(caught.value)
    for part in ("domain_name 'API.example' is not a DNS name", "certificate_arn is in us-east-1, the stack in "
                 "eu-west-1", "hosted_zone_id 'zone1' is not a Route 53 hosted zone id"):
        assert part in message, part
    with pytest.raises(SettingsError, match="domain_name and certificate_arn go together"):
        load_settings(["domain_name=api.example.com"])
    with pytest.raises(SettingsError, match="hosted_zone_id goes with domain_name"):
        load_settings(["hosted_zone_id=Z0123456789ABCDEFGHIJ"])
    with pytest.raises(SettingsError, match="is not an ACM certificate ARN"):
        load_settings(["domain_name=api.example.com", "certificate_arn=arn:aws:iam::1:certificate/x"])
