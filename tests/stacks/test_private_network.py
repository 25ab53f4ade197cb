"""Private networking: the PrivateNetwork construct on its own (aws_cdk.assertions), its wiring in the app (every
model container and Lambda in the private subnets), network isolation, the settings' checks and the cost row."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from cfn_render import statements

from deployment.settings import SettingsError, load_settings
from ops import cost
from stacks.private_network import PrivateNetwork

SUBNETS = ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")
TABLES = ("rtb-0123456789abcdef0", "rtb-0123456789abcdef1")
S3_MODEL = json.dumps({"mine": {"kind": "text-to-image", "source": "s3://my-models/sd/model.tar.gz",
                                "instance_type": "ml.g5.xlarge"}})
# The same settings as the nag, lint and least-privilege variants: one cached synth for all.
CREATE = {"vpc": "create", "models": "mine", "mine.batch": "true", "mine.network_isolation": "true",
          "model_specs": S3_MODEL}
EXISTING = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ",".join(SUBNETS), "route_table_ids": ",".join(TABLES),
            "models": "gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting": "shared",
            "minilm-embeddings.hosting": "shared", "minilm-embeddings.instance_type": "ml.m5.xlarge",
            "tracing": "true"}


def network(allow: bool = True, **props):
    """A PrivateNetwork on its own; allow: one grant through each endpoint (an endpoint with none fails synth)."""
    stack = Stack(App(), "Test")
    made = PrivateNetwork(stack, "Network", **props)
    if not allow:
        return made, None
    for service in made.endpoint_policies:
        made.allow(service, [f"{service.split('.')[0]}:Call"], [f"arn:aws:{service}:::thing"])
    return made, Template.from_stack(stack)


def test_each_endpoint_allows_only_what_was_granted_through_it_and_none_is_left_open():
    made, _ = network(allow=False, interface_services=("sagemaker.runtime", "sts"))
    made.allow("s3", ["s3:PutObject", "s3:GetObject"], ["arn:aws:s3:::images/*"])
    made.allow("s3", ["s3:GetObject"], ["arn:aws:s3:::artifacts/model.tar.gz"])
    made.allow("sagemaker.runtime", ["sagemaker:InvokeEndpoint"], ["arn:aws:sagemaker:us-east-1:1:endpoint/e"])
    made.allow("xray", ["xray:PutTraceSegments"], ["*"])  # no X-Ray endpoint made: nothing to allow through
    with pytest.raises(RuntimeError, match=re.escape(
            "PrivateNetwork Network: nothing was allowed through the sts endpoint (allow()); its policy would deny "
            "every call")):
        Template.from_stack(Stack.of(made))
    made.allow("sts", ["sts:AssumeRole"], ["arn:aws:iam::1:role/signer"])
    policies = {r["Properties"]["ServiceName"]["Fn::Join"][1][2]: r["Properties"]["PolicyDocument"]["Statement"]
                for r in Template.from_stack(Stack.of(made)).to_json()["Resources"].values()
                if r["Type"] == "AWS::EC2::VPCEndpoint"}
    assert policies == {
        ".s3": [{"Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Allow", "Principal": {"AWS": "*"},
                 "Resource": "arn:aws:s3:::images/*"},
                {"Action": "s3:GetObject", "Effect": "Allow", "Principal": {"AWS": "*"},
                 "Resource": "arn:aws:s3:::artifacts/model.tar.gz"}],
        ".sagemaker.runtime": [{"Action": "sagemaker:InvokeEndpoint", "Effect": "Allow", "Principal": {"AWS": "*"},
                                "Resource": "arn:aws:sagemaker:us-east-1:1:endpoint/e"}],
        ".sts": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": "*"},
                  "Resource": "arn:aws:iam::1:role/signer"}]}


def test_a_new_network_has_private_subnets_in_two_zones_and_no_way_to_the_internet():
    made, template = network(interface_services=("sagemaker.runtime", "sts"))
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::Subnet", 2)
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::Route"):
        template.resource_count_is(kind, 0)
    subnets = [r["Properties"] for r in template.to_json()["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"]
    assert [s["MapPublicIpOnLaunch"] for s in subnets] == [False, False]
    template.has_resource_properties("AWS::EC2::FlowLog", {"ResourceType": "VPC", "TrafficType": "ALL",
                                                           "LogDestinationType": "cloud-watch-logs"})
    template.has_resource("AWS::Logs::LogGroup", {"Properties": {"RetentionInDays": 30},
                                                  "DeletionPolicy": "Delete"})
    assert len(made.subnet_ids) == 2 and len(made.route_table_ids) == 2


def test_endpoints_reach_s3_by_gateway_and_each_service_by_private_dns_in_every_subnet():
    made, template = network(interface_services=("sagemaker.runtime", "sts", "logs"))
    resources = template.to_json()["Resources"]
    endpoints = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    gateway = [e for e in endpoints if e["VpcEndpointType"] == "Gateway"]
    interfaces = [e for e in endpoints if e["VpcEndpointType"] == "Interface"]
    assert len(gateway) == 1 and gateway[0]["ServiceName"] == {"Fn::Join": ["", ["com.amazonaws.", {
        "Ref": "AWS::Region"}, ".s3"]]}
    assert len(gateway[0]["RouteTableIds"]) == 2
    assert sorted(e["ServiceName"]["Fn::Join"][1][2] for e in interfaces) == [".logs", ".sagemaker.runtime", ".sts"]
    assert all(e["PrivateDnsEnabled"] is True and len(e["SubnetIds"]) == 2 for e in interfaces)
    assert all(len(e["SecurityGroupIds"]) == 1 and e["SecurityGroupIds"][0]["Fn::GetAtt"][0].startswith(
        "NetworkEndpoints") for e in interfaces)
    assert sorted(made.interface_endpoints) == ["logs", "sagemaker.runtime", "sts"]


def test_security_groups_let_only_https_out_and_only_our_own_groups_into_the_endpoints():
    _, template = network()
    groups = {k: r["Properties"] for k, r in template.to_json()["Resources"].items()
              if r["Type"] == "AWS::EC2::SecurityGroup"}
    by_name = {next(n for n in ("Models", "Functions", "Endpoints") if n in k): v for k, v in groups.items()}
    for side in ("Models", "Functions"):
        [egress] = by_name[side]["SecurityGroupEgress"]
        assert (egress["CidrIp"], egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == \
            ("0.0.0.0/0", "tcp", 443, 443)
        assert "SecurityGroupIngress" not in by_name[side]
    assert by_name["Endpoints"]["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32"
    ingress = [r["Properties"] for r in template.to_json()["Resources"].values()
               if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert len(ingress) == 2 and all(i["FromPort"] == i["ToPort"] == 443 and i["IpProtocol"] == "tcp"
                                     for i in ingress)
    sources = sorted(i["SourceSecurityGroupId"]["Fn::GetAtt"][0].rstrip("0123456789ABCDEF") for i in ingress)
    assert sources == ["NetworkFunctions", "NetworkModels"]


def test_an_existing_vpc_is_used_by_id_and_its_endpoints_can_be_left_to_it():
    made, template = network(vpc_id="vpc-0123456789abcdef0", subnet_ids=SUBNETS, route_table_ids=TABLES)
    template.resource_count_is("AWS::EC2::VPC", 0)
    template.resource_count_is("AWS::EC2::FlowLog", 0)
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcId": "vpc-0123456789abcdef0",
                                                               "RouteTableIds": list(TABLES)})
    assert made.model_placement.subnet_ids == SUBNETS
    assert made.s3_endpoint is not None
    none, without = network(vpc_id="vpc-0123456789abcdef0", subnet_ids=SUBNETS, endpoints=False)
    without.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    assert none.s3_endpoint is None and none.interface_endpoints == {}  # attributes say there is none
    without.resource_count_is("AWS::EC2::SecurityGroup", 3)


def test_the_construct_refuses_what_cannot_work_with_every_problem_named():
    with pytest.raises(ValueError) as error:
        network(vpc_id="vpc-1", subnet_ids=("subnet-0123456789abcdef0",), interface_services=("ecr.api",))
    message = str(error.value)
    for part in ("vpc_id 'vpc-1'", "route_table_ids", "unknown interface endpoint service"):
        assert part in message, part
    assert "subnet_ids needs at least two subnets, in different Availability Zones (SageMaker asks for two even for " \
           "one instance)" in message  # the whole problem: why two
    with pytest.raises(ValueError, match="^" + re.escape(
            "PrivateNetwork Network: subnet_ids and route_table_ids go with vpc_id (vpc=create makes its own)") + "$"):
        network(subnet_ids=SUBNETS)


def test_a_subnet_or_route_table_listed_twice_is_refused_and_counts_once():
    with pytest.raises(ValueError) as error:
        network(vpc_id="vpc-0123456789abcdef0", subnet_ids=(SUBNETS[0], SUBNETS[0]),
                route_table_ids=(TABLES[0], TABLES[1], TABLES[0]))
    assert str(error.value) == (
        f"PrivateNetwork Network: subnet_ids lists {SUBNETS[0]!r} twice; route_table_ids lists {TABLES[0]!r} twice; "
        "subnet_ids needs at least two subnets, in different Availability Zones (SageMaker asks for two even for one "
        "instance)")


def test_every_model_container_and_lambda_of_the_app_runs_in_the_private_subnets(synth):
    template = synth(**CREATE)
    resources = template["Resources"]
    models = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::SageMaker::Model"}
    assert len(models) == 2  # the endpoint's and the batch model
    for props in models.values():
        config = props["VpcConfig"]
        assert len(config["Subnets"]) == 2 and config["SecurityGroupIds"][0]["Fn::GetAtt"][0].startswith(
            "NetworkModels")
        assert props["EnableNetworkIsolation"] is True
    functions = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    model_function = next(v for k, v in functions.items() if k.startswith("MineFunction"))
    assert model_function["VpcConfig"]["SecurityGroupIds"][0]["Fn::GetAtt"][0].startswith("NetworkFunctions")
    assert model_function["Environment"]["Variables"]["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    # The bucket emptier runs only on delete and talks to S3 alone: it stays out of the VPC.
    assert "VpcConfig" not in next(v for k, v in functions.items() if k.startswith("ImagesEmptier"))
    assert template["Outputs"]["VpcId"]["Value"] == {"Ref": next(k for k, r in resources.items()
                                                                 if r["Type"] == "AWS::EC2::VPC")}
    # Images mean the URL signer: STS through its endpoint.
    services = sorted(r["Properties"]["ServiceName"]["Fn::Join"][1][2] for r in resources.values()
                      if r["Type"] == "AWS::EC2::VPCEndpoint")
    assert services == [".logs", ".s3", ".sagemaker.runtime", ".sts"]


def test_the_apps_endpoints_allow_its_bucket_artifacts_endpoints_signer_and_log_groups_only(synth):
    template = synth(**CREATE)
    resources = template["Resources"]

    def policy(service):
        endpoint, = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint"
                     and r["Properties"]["ServiceName"]["Fn::Join"][1][2] == service]
        return statements(endpoint["PolicyDocument"], template)

    bucket = next(k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket")
    assert policy(".s3") == [
        {"Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"],
         "Effect": "Allow", "Principal": {"AWS": "*"}, "Resource": [f"${{{bucket}.Arn}}", f"${{{bucket}.Arn}}/*"]},
        {"Action": ["s3:GetObject"], "Effect": "Allow", "Principal": {"AWS": "*"},
         "Resource": ["arn:${AWS::Partition}:s3:::my-models/sd/model.tar.gz"]}]
    assert policy(".sagemaker.runtime") == [
        {"Action": ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"], "Effect": "Allow",
         "Principal": {"AWS": "*"},
         "Resource": ["arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/"
                      "sagemakermodelapi-mine"]}]
    signer = next(k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role" and k.startswith("ImagesUrlSigner"))
    assert policy(".sts") == [{"Action": ["sts:AssumeRole"], "Effect": "Allow", "Principal": {"AWS": "*"},
                               "Resource": [f"${{{signer}.Arn}}"]}]
    assert policy(".logs")[0]["Resource"] == [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/*"]


def test_shared_components_in_an_existing_vpc_and_their_role_attaches_once(synth):
    template = synth(**EXISTING)
    models = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    assert len(models) == 2 and all(m["VpcConfig"]["Subnets"] == list(SUBNETS) for m in models)
    assert all("EnableNetworkIsolation" not in m for m in models)
    shared_role = next(r for k, r in template["Resources"].items()
                       if k.startswith("SharedExecutionRole") and r["Type"] == "AWS::IAM::Role")
    policies = [r["Properties"]["PolicyDocument"]["Statement"] for k, r in template["Resources"].items()
                if r["Type"] == "AWS::IAM::Policy" and any(
                    role.get("Ref", "").startswith("SharedExecutionRole") for role in r["Properties"]["Roles"])]
    attach = [s for doc in policies for s in doc if "ec2:CreateNetworkInterface" in s["Action"]]
    assert len(attach) == 1 and shared_role
    services = sorted(r["Properties"]["ServiceName"]["Fn::Join"][1][2] for r in template["Resources"].values()
                      if r["Type"] == "AWS::EC2::VPCEndpoint")
    # No images: no STS; tracing: X-Ray; no bucket and no artifact (Hub models, no code): no S3 endpoint at all.
    assert services == [".logs", ".sagemaker.runtime", ".xray"]


def test_in_a_vpc_of_yours_the_endpoints_keep_awss_default_policy_unless_asked(synth):
    """Your other workloads use the endpoints the stack makes (private DNS answers for the whole VPC; a gateway
    endpoint carries every S3 call of its route tables): restricting them by default would cut their calls."""
    def endpoint_policies(**values):
        template = synth(**values)
        return {r["Properties"]["ServiceName"]["Fn::Join"][1][2]: r["Properties"].get("PolicyDocument")
                for r in template["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"}

    yours = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ",".join(SUBNETS), "route_table_ids": ",".join(TABLES)}
    open_ = endpoint_policies(**yours)
    assert sorted(open_) == [".logs", ".s3", ".sagemaker.runtime", ".sts"] and set(open_.values()) == {None}
    restricted = endpoint_policies(**yours, vpc_endpoint_policies="restrict")
    assert all(policy is not None for policy in restricted.values())
    assert all(policy is not None for policy in endpoint_policies(**CREATE).values())  # the stack's own VPC
    created_open = endpoint_policies(**CREATE, vpc_endpoint_policies="open")
    assert set(created_open.values()) == {None}


def test_endpoints_your_vpc_has_are_skipped_by_name(synth):
    yours = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ",".join(SUBNETS)}
    template = synth(**yours, vpc_endpoints_skip="s3,sts")  # no route tables needed: no gateway endpoint
    services = sorted(r["Properties"]["ServiceName"]["Fn::Join"][1][2] for r in template["Resources"].values()
                      if r["Type"] == "AWS::EC2::VPCEndpoint")
    assert services == [".logs", ".sagemaker.runtime"]
    settings = load_settings([f"{k}={v}" for k, v in yours.items()] + ["vpc_endpoints_skip=s3,sts"])
    network_cost, = [r for r in cost.rows(settings, "us-east-1") if r.model == "vpc endpoints"]
    assert network_cost.instance == "2 x 2 zones" and network_cost.hourly_min == pytest.approx(0.01 * 2 * 2)  # two interface endpoints, two zones


def test_settings_refuse_endpoint_skips_and_policies_that_cannot_apply():
    with pytest.raises(SettingsError) as error:
        load_settings(["vpc=create", "vpc_endpoints_skip=s3,dynamodb", "vpc_endpoint_policies=strict",
                       "models=mine", f"model_specs={S3_MODEL}"])
    message = str(error.value)
    assert "vpc_endpoints_skip: unknown endpoint 'dynamodb' (known: sagemaker.runtime, sts, logs, " in message
    assert "\n  - vpc_endpoints_skip names endpoints a VPC of yours (vpc_id) has already; a VPC the stack creates " \
           "has none\n" in message + "\n"
    assert "vpc_endpoint_policies must be one of restrict, open (got 'strict')" in message


def test_sagemaker_makes_and_deletes_network_interfaces_only_in_the_deployments_vpc(synth):
    def role_statements(template):
        documents = [r["Properties"]["PolicyDocument"] for r in template["Resources"].values()
                     if r["Type"] == "AWS::IAM::Policy"]
        documents += [p["PolicyDocument"] for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"
                      for p in r["Properties"].get("Policies", [])]
        return [s for document in documents for s in statements(document, template)]

    for values, vpc in ((EXISTING, "vpc/vpc-0123456789abcdef0"), (CREATE, None)):
        found = role_statements(synth(**values))
        bounded = [s for s in found if "ec2:Vpc" in json.dumps(s)]
        assert bounded, values
        for statement in bounded:
            assert statement["Action"] == ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]
            condition = statement["Condition"]["ArnEquals"]["ec2:Vpc"]
            assert condition.startswith("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc/")
            if vpc:
                assert condition.endswith(vpc)
        unbounded = [s for s in found if s["Resource"] == ["*"] and "ec2:DescribeVpcs" in s["Action"]]
        assert unbounded and all("ec2:CreateNetworkInterface" not in s["Action"] and "ec2:DeleteNetworkInterface"
                                 not in s["Action"] for s in unbounded)


def test_without_vpc_settings_nothing_of_it_is_made(template):
    assert not any(r["Type"].startswith("AWS::EC2::") for r in template["Resources"].values())
    assert all("VpcConfig" not in r["Properties"] for r in template["Resources"].values()
               if r["Type"] in ("AWS::SageMaker::Model", "AWS::Lambda::Function"))


def test_settings_refuse_hub_downloads_without_internet_and_say_what_to_do():
    with pytest.raises(SettingsError) as error:
        load_settings(["vpc=create", "models=stable-diffusion,gpt2-tgi"])
    message = str(error.value)
    assert "model 'stable-diffusion' downloads its weights from the Hugging Face Hub" in message
    assert "model 'gpt2-tgi' downloads" in message and "python -m ops.artifact builds one" in message
    with pytest.raises(SettingsError, match="network_isolation leaves the container no network"):
        load_settings(["network_isolation=true"])
    assert load_settings(["vpc_id=vpc-0123456789abcdef0", f"subnet_ids={','.join(SUBNETS)}",
                          "vpc_endpoints=false"]).in_vpc  # your VPC may have a NAT gateway: hub models allowed


def test_settings_name_every_network_problem_at_once():
    with pytest.raises(SettingsError) as error:
        load_settings(["vpc_id=vpc-xyz", "subnet_ids=subnet-0123456789abcdef0, bad", "models=mine",
                       f"model_specs={S3_MODEL}"])
    message = str(error.value)
    for part in ("vpc_id 'vpc-xyz'", "subnet id 'bad'"):
        assert part in message, part
    # One problem per line, each line the whole problem.
    assert "\n  - route_table_ids: the subnets' route tables, for the S3 gateway endpoint (or vpc_endpoints_skip=s3 " \
           "when their route tables have one already)\n" in message + "\n"
    with pytest.raises(SettingsError, match="set one of them"):
        load_settings(["vpc=create", "vpc_id=vpc-0123456789abcdef0"])
    with pytest.raises(SettingsError, match="vpc must be one of none, create"):
        load_settings(["vpc=yes"])
    with pytest.raises(SettingsError, match="go with vpc_id"):
        load_settings(["route_table_ids=rtb-0123456789abcdef0"])


def test_cost_shows_the_always_on_interface_endpoints():
    settings = load_settings([f"{k}={v}" for k, v in CREATE.items()])
    row = next(r for r in cost.rows(settings, "us-east-1") if r.model == "vpc endpoints")
    # sagemaker.runtime, logs, sts in two zones at $0.01 an hour each.
    assert row.hourly_min == pytest.approx(0.06) and row.idle_monthly == pytest.approx(0.06 * 730)
    assert "sagemaker.runtime, logs, sts in 2 zones" in row.note
    existing = load_settings([f"{k}={v}" for k, v in EXISTING.items()])
    assert next(r for r in cost.rows(existing, "us-east-1") if r.model == "vpc endpoints").hourly_min == \
        pytest.approx(0.01 * 3 * 2)  # runtime, logs, xray; one zone per subnet given
    assert not any(r.model == "vpc endpoints" for r in cost.rows(load_settings(["vpc_id=vpc-0123456789abcdef0",
                   f"subnet_ids={','.join(SUBNETS)}", "vpc_endpoints=false"]), "us-east-1"))
    unknown = next(r for r in cost.rows(settings, "eu-north-1") if r.model == "vpc endpoints")
    assert unknown.hourly_min is None and "not in the price table" in unknown.note
