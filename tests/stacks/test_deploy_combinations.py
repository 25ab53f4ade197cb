"""Combinations that pass synth's own checks but fail at deploy, refused before: a hosting mode or AWS Budgets in a
region without it, serverless in a VPC or isolated, names that collide once cut to 63 characters, and a shared
endpoint whose VPC and isolation must be its endpoint config's."""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from deployment.container_images import ContainerImage
from deployment.hosting import Shared
from deployment.service_regions import CFN_RESOURCE_REGIONS, FEATURES, SERVERLESS_REGIONS
from deployment.settings import REGION, Settings, SettingsError, bounded_name, load_settings
from stacks.private_network import Placement
from stacks.shared_endpoint import SharedEndpoint

SHARED = {"models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting": "shared", "minilm-embeddings.hosting": "shared",
          "minilm-embeddings.instance_type": "ml.m5.xlarge"}
S3_MODELS = json.dumps({name: {"kind": "embeddings", "source": f"s3://my-models/{name}/model.tar.gz",
                               "instance_type": "ml.m5.xlarge", "hosting": "shared"} for name in ("a", "b")})


def problems(values: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_values(values)
    return caught.value.problems


def test_the_cloudformation_region_tables_are_cfn_lints():
    """A cfn-lint upgrade that adds or drops a region for a resource type fails here, so the table is updated."""
    import cfnlint

    providers = Path(cfnlint.__file__).parent / "data" / "schemas" / "providers"
    regions = {Path(p).stem: json.loads(Path(p).read_text()) for p in glob.glob(str(providers / "*.json"))
               if REGION.match(Path(p).stem)}
    assert len(regions) >= 30
    for resource_type, recorded in CFN_RESOURCE_REGIONS.items():
        assert recorded == {r for r, types in regions.items() if resource_type in types}, resource_type
    assert len(SERVERLESS_REGIONS) == 21 and set(FEATURES) == {
        "hosting=shared (inference components)", "hosting=serverless", "monthly_budget_usd (AWS Budgets)"}


@pytest.mark.parametrize("values, region, problem", [
    (SHARED, "us-west-1", "model 'gpt2-cpu': hosting=shared (inference components) is not available in us-west-1"),
    (SHARED, "eu-west-3", "model 'minilm-embeddings': hosting=shared (inference components) is not available in "
                          "eu-west-3"),
    ({"models": "minilm-embeddings", "hosting": "serverless"}, "ap-south-2",
     "model 'minilm-embeddings': hosting=serverless is not available in ap-south-2"),
    ({"monthly_budget_usd": "300", "alarm_email": "ops@example.com"}, "eu-north-1",
     "monthly_budget_usd (AWS Budgets) is not available in eu-north-1"),
])
def test_a_region_without_what_the_settings_use_is_refused_at_synth(values, region, problem):
    found = problems({**values, "region": region})
    assert len(found) == (2 if values is SHARED else 1)  # each shared model says so
    sentence, = [p for p in found if p.startswith(problem + " (it is in ")]
    assert sentence.endswith("; pick another region or another hosting" if "hosting" in problem else
                             "; deploy without monthly_budget_usd and set a budget in the Billing console")
    # The same settings are fine in a region that has it, and without a region (preflight checks the real one).
    Settings.from_values({**values, "region": "us-east-1"})
    assert Settings.from_values(values).region_problems(region) == found


def test_serverless_runs_neither_in_a_vpc_nor_isolated():
    serverless = {"models": "mine", "model_specs": json.dumps({"mine": {
        "kind": "embeddings", "source": "s3://my-models/mine/model.tar.gz", "instance_type": "ml.m5.xlarge",
        "hosting": "serverless"}})}
    assert problems({**serverless, "vpc": "create"}) == [
        "model 'mine': hosting=serverless cannot run in a VPC (Serverless Inference supports no VPC configuration: "
        "SageMaker Developer Guide, Serverless Inference, feature exclusions); use hosting=realtime or async or "
        "shared, or deploy it without vpc/vpc_id"]
    assert problems({**serverless, "network_isolation": "true"}) == [
        "model 'mine': network_isolation cannot be used with serverless hosting (Serverless Inference supports no "
        "network isolation: SageMaker Developer Guide, Serverless Inference, feature exclusions); use "
        "hosting=realtime or async"]
    Settings.from_values({**serverless, "hosting": "realtime", "vpc": "create", "network_isolation": "true"})


def test_long_names_stay_distinct_and_valid_and_short_ones_are_unchanged():
    stack = "S" * 57  # <stack>-gpt2-cpu and <stack>-gpt2-tgi were both cut to the same 63 characters
    settings = load_settings([f"stack_name={stack}", "models=gpt2-cpu,gpt2-tgi,minilm-embeddings",
                              "minilm-embeddings.hosting=shared", "minilm-embeddings.instance_type=ml.m5.xlarge"])
    names = [settings.endpoint_name(m) for m in settings.catalog] + [settings.component_name(settings.catalog[2])]
    prefixes = [settings.batch_job_prefix(m) for m in settings.catalog]
    assert len(set(names)) == len(names) and len(set(prefixes)) == len(prefixes)
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9](-*[a-z0-9])*", name), name
    assert all(len(p) <= 40 for p in prefixes)
    assert bounded_name("SageMakerModelApi-stable-diffusion", 63) == "sagemakermodelapi-stable-diffusion"
    cut = bounded_name("x" * 70, 63)
    assert len(cut) == 63 and cut.startswith("x" * 54 + "-") and cut != bounded_name("x" * 71, 63)


def test_a_shared_endpoint_puts_its_vpc_and_isolation_on_the_endpoint_config_and_every_model():
    stack = Stack(App(), "T")
    placement = Placement(("subnet-a", "subnet-b"), ("sg-models",))
    shared = SharedEndpoint(stack, "Shared", instance_type="ml.m5.xlarge", endpoint_name="pool",
                            placement=placement, network_isolation=True)
    for name in ("a", "b"):
        shared.add_component(name.upper(), component_name=f"pool-{name}", hosting=Shared("ml.m5.xlarge"),
                             image=ContainerImage.from_uri("763104351884.dkr.ecr.us-east-1.amazonaws.com/x:1"),
                             model_data_url=f"s3://b/{name}.tar.gz", model_data_arn=f"arn:aws:s3:::b/{name}.tar.gz")
    template = Template.from_stack(stack).to_json()
    config, = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert config["VpcConfig"] == {"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-models"]}
    assert config["EnableNetworkIsolation"] is True
    models = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    assert len(models) == 2 and all(m["VpcConfig"] == config["VpcConfig"] and m["EnableNetworkIsolation"]
                                    for m in models)
    attach = [s for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
              for s in r["Properties"]["PolicyDocument"]["Statement"] if "ec2:CreateNetworkInterface" in s["Action"]]
    assert len(attach) == 1
    plain = Template.from_stack(_plain_shared()).to_json()
    config, = [r["Properties"] for r in plain["Resources"].values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert "VpcConfig" not in config and "EnableNetworkIsolation" not in config


def _plain_shared() -> Stack:
    stack = Stack(App(), "P")
    SharedEndpoint(stack, "Shared", instance_type="ml.m5.xlarge", endpoint_name="pool")
    return stack


def test_shared_models_isolate_all_together_or_none():
    isolated = {"models": "a,b", "model_specs": S3_MODELS, "a.network_isolation": "true"}
    assert problems(isolated) == [
        "network_isolation applies to the whole shared endpoint (its endpoint config's EnableNetworkIsolation): set "
        "it on every shared model or on none (got a=true, b=false)"]
    both = Settings.from_values({**isolated, "b.network_isolation": "true"})
    assert all(m.network_isolation for m in both.catalog)


def test_the_app_gives_the_shared_endpoint_config_the_network_of_its_models(synth):
    template = synth(vpc="create", models="a,b", model_specs=S3_MODELS, **{"a.network_isolation": "true",
                                                                           "b.network_isolation": "true"})
    config, = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
    assert config["EnableNetworkIsolation"] is True
    assert config["VpcConfig"]["SecurityGroupIds"][0]["Fn::GetAtt"][0].startswith("NetworkModels")
    assert len(config["VpcConfig"]["Subnets"]) == 2
