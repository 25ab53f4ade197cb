"""Private networking (`vpc=create`, or `vpc_id` + `subnet_ids`): the model containers and the Lambdas run in
private subnets, each side with a security group of its own, and reach the AWS services they call through VPC
endpoints, so no traffic needs a NAT gateway or the internet.

What calls what from inside the VPC:
- the Lambdas: SageMaker runtime (InvokeEndpoint, InvokeEndpointAsync), S3 (images, jobs), STS (the URL signer's
  AssumeRole, for image models); their logs leave through Lambda itself, not the VPC;
- the model containers: S3 (model.tar.gz, async job inputs and answers, batch files), Secrets Manager when their
  code reads the Hub token; SageMaker pulls their images outside the VPC.
"SageMaker hosts models in a VPC ... models access AWS resources ... over the internet" unless given an S3 endpoint
(Developer Guide, "Give SageMaker Hosted Endpoints Access to Resources in Your Amazon VPC"), which also asks for at
least two subnets in different Availability Zones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

import jsii
from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct, IValidation

from deployment.settings import INTERFACE_SERVICES, network_problems  # noqa: F401 (INTERFACE_SERVICES re-exported)

HTTPS = 443


@dataclass(frozen=True)
class Placement:
    """Where network interfaces go: subnets and security groups (a SageMaker model's VpcConfig, a Lambda's), and
    the VPC they are in (what the roles' network-interface rights are bounded to; None: not bounded)."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    vpc_id: Optional[str] = None


def sagemaker_network_statements(vpc_id: Optional[str] = None) -> list[iam.PolicyStatement]:
    """What a SageMaker execution role needs to attach its containers to a VPC: the Developer Guide lists these
    actions on Resource "*" ("Add Permissions for Endpoint Access for Containers Running in a VPC to Custom IAM
    Policies"). Narrowed where EC2 lets a condition hold: CreateNetworkInterface (on the network interface, subnet
    and security group it uses) and DeleteNetworkInterface (on the interface) only in the placement's VPC, through
    the ec2:Vpc condition key, which EC2 sets on those resource types (Service Authorization Reference, Amazon EC2).
    The Describe calls have no resource type at all, and the two interface-permission actions are left as SageMaker
    documents them: a condition EC2 does not evaluate for them would deny SageMaker at the first deploy."""
    statements = [iam.PolicyStatement(
        sid="AttachToVpc",
        actions=["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterfacePermission",
                 "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                 "ec2:DescribeSubnets", "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs"],
        resources=["*"])]
    interfaces = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]
    if vpc_id is None:
        statements[0].add_actions(*interfaces)
        return statements
    arn = f"arn:{Aws.PARTITION}:ec2:{Aws.REGION}:{Aws.ACCOUNT_ID}"
    statements.append(iam.PolicyStatement(
        sid="InterfacesInOwnVpc", actions=interfaces,
        resources=[f"{arn}:network-interface/*", f"{arn}:subnet/*", f"{arn}:security-group/*"],
        conditions={"ArnEquals": {"ec2:Vpc": f"{arn}:vpc/{vpc_id}"}}))
    return statements


def lambda_network_statement() -> iam.PolicyStatement:
    """What a Lambda's role needs to run in a VPC: the actions of AWS's AWSLambdaVPCAccessExecutionRole, inline (no
    managed policy), on "*" as there: Lambda manages the function's network interfaces with them."""
    return iam.PolicyStatement(
        actions=["ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
                 "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses"],
        resources=["*"])


class PrivateNetwork(Construct):
    """Private subnets, security groups and VPC endpoints for the model API.

    Props:
      vpc_id, subnet_ids, route_table_ids: an existing VPC and at least two of its subnets (and their route tables,
        for the S3 gateway endpoint). Default (vpc_id None): a new VPC, 10.0.0.0/16, one isolated subnet in each of
        two Availability Zones: no internet gateway, no NAT, flow logs to a log group of the stack.
      endpoints: create the VPC endpoints (default True; an existing VPC that has them all: False).
      interface_services: interface endpoints to create (keys of INTERFACE_SERVICES). A VPC that has an interface
        endpoint with private DNS for a service already cannot have a second ("private-dns-enabled cannot be set
        because there is already a conflicting DNS domain for <service name> in the VPC", EC2's InvalidParameter
        at deploy): leave such services out.
      s3_endpoint: create S3's gateway endpoint too (default True; False when nothing in the VPC calls S3, or when
        the route tables have one: a route table holds one route per prefix list, and EC2 refuses a second gateway
        endpoint on it: "route table rtb-... already has a route with destination-prefix-list-id pl-...").
      restrict_policies: each endpoint allows only what `allow` granted through it (default True); False leaves
        AWS's default policy (full access).
      log_retention: retention of the flow log group (a new VPC only).

    Endpoint policies (restrict_policies): every endpoint made here allows only what `allow` granted through it (the
    S3 gateway: the stack's bucket and the model artifacts; SageMaker runtime: the stack's endpoints; ...), so a
    role in the VPC cannot reach another account's bucket or endpoint through them even where its IAM policy would
    let it; synth fails for an endpoint nothing was allowed through. Principal "*": the callers' own IAM policies
    still decide who may. But an endpoint serves the whole VPC, not this stack: an interface endpoint with private
    DNS answers the service's public name for every workload in the VPC, and a gateway endpoint's policy governs
    all S3 traffic of the route tables it is in (AWS PrivateLink guide, "Access an AWS service using an interface
    VPC endpoint" and "Control access to VPC endpoints using endpoint policies"). In a VPC of yours, restricted
    policies would cut your other workloads' STS, Logs, SageMaker runtime and S3 calls: the stack restricts them by
    default only in the VPC it creates (deployment.settings.Settings.restricts_endpoints).

    Security groups: `models` (SageMaker's interfaces) and `functions` (the Lambdas') allow outbound HTTPS only and
    nothing inbound (SageMaker reaches its containers on its own network); `endpoints` allows HTTPS in from those two.
    Attributes: vpc_id, subnet_ids, route_table_ids, vpc (a new VPC, else None), models, functions, endpoints
    (security groups), interface_endpoints (service -> CfnVPCEndpoint), s3_endpoint, flow_log. Properties:
    model_placement, function_placement.
    """

    def __init__(self, scope: Construct, construct_id: str, *, vpc_id: Optional[str] = None,
                 subnet_ids: Sequence[str] = (), route_table_ids: Sequence[str] = (), endpoints: bool = True,
                 interface_services: Sequence[str] = ("sagemaker.runtime",), s3_endpoint: bool = True,
                 restrict_policies: bool = True, log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH):
        super().__init__(scope, construct_id)
        problems = network_problems(vpc_id, subnet_ids, route_table_ids, endpoints and s3_endpoint,
                                    interface_services)
        if problems:
            raise ValueError(f"PrivateNetwork {construct_id}: " + "; ".join(problems))
        self.vpc = None
        self.flow_log = None
        if vpc_id is None:
            self.vpc = ec2.Vpc(
                self, "Vpc", max_azs=2, nat_gateways=0,
                subnet_configuration=[ec2.SubnetConfiguration(name="private", cidr_mask=20,
                                                              subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
                # CDK's default-group restriction is a custom resource whose log group outlives the stack; no
                # resource of this stack uses the default group.
                restrict_default_security_group=False,
            )
            flow_logs = logs.LogGroup(self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
            self.flow_log = self.vpc.add_flow_log("FlowLog",
                                                  destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
            vpc_id = self.vpc.vpc_id
            subnet_ids = [s.subnet_id for s in self.vpc.isolated_subnets]
            route_table_ids = [s.route_table.route_table_id for s in self.vpc.isolated_subnets]
        self.vpc_id = vpc_id
        self.subnet_ids, self.route_table_ids = tuple(subnet_ids), tuple(route_table_ids)
        self.models = self._group("Models", "SageMaker model containers of the model API: HTTPS out only")
        self.functions = self._group("Functions", "Lambdas of the model API: HTTPS out only")
        self.endpoints = self._group("Endpoints", "VPC endpoints of the model API: HTTPS in from its models and "
                                                  "Lambdas", outbound=False)
        for source, name in ((self.models, "FromModels"), (self.functions, "FromFunctions")):
            ec2.CfnSecurityGroupIngress(self, f"Endpoints{name}", group_id=self.endpoints.attr_group_id,
                                        ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS,
                                        source_security_group_id=source.attr_group_id,
                                        description="HTTPS to the VPC endpoints")
        self.interface_endpoints: dict[str, ec2.CfnVPCEndpoint] = {}
        self.s3_endpoint = None
        # service ("s3" for the gateway) -> the policy of its endpoint, filled by allow(); none: AWS's default
        self.restrict_policies = restrict_policies
        self.endpoint_policies: dict[str, iam.PolicyDocument] = {}
        if endpoints:
            region = Stack.of(self).region
            if s3_endpoint:
                self.s3_endpoint = ec2.CfnVPCEndpoint(
                    self, "S3", vpc_id=vpc_id, service_name=f"com.amazonaws.{region}.s3", vpc_endpoint_type="Gateway",
                    route_table_ids=list(self.route_table_ids), policy_document=self._policy("s3"))
            for service in interface_services:
                self.interface_endpoints[service] = ec2.CfnVPCEndpoint(
                    self, "".join(part.capitalize() for part in re.split(r"[.-]", service)),
                    vpc_id=vpc_id, service_name=f"com.amazonaws.{region}.{service}", vpc_endpoint_type="Interface",
                    private_dns_enabled=True, subnet_ids=list(self.subnet_ids),
                    security_group_ids=[self.endpoints.attr_group_id], policy_document=self._policy(service))
        self.node.add_validation(_EndpointPoliciesGranted(self))

    def _policy(self, service: str) -> Optional[iam.PolicyDocument]:
        if not self.restrict_policies:
            return None
        self.endpoint_policies[service] = iam.PolicyDocument()
        return self.endpoint_policies[service]

    def allow(self, service: str, actions: Sequence[str], resources: Sequence[str]) -> None:
        """Let what runs in the VPC call `actions` on `resources` through the endpoint of `service` (an
        INTERFACE_SERVICES key, or "s3" for the gateway endpoint). Nothing when that endpoint is not made here, or
        its policy is AWS's default (restrict_policies False)."""
        policy = self.endpoint_policies.get(service)
        if policy is not None:
            policy.add_statements(iam.PolicyStatement(principals=[iam.AnyPrincipal()], actions=sorted(actions),
                                                      resources=list(resources)))

    def _group(self, construct_id: str, description: str, outbound: bool = True) -> ec2.CfnSecurityGroup:
        egress = ec2.CfnSecurityGroup.EgressProperty(
            ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS, cidr_ip="0.0.0.0/0",
            # No NAT in a new VPC: the only way out is the VPC endpoints (an existing VPC's routes decide there).
            description="HTTPS to AWS services through the VPC endpoints") if outbound else \
            ec2.CfnSecurityGroup.EgressProperty(  # CloudFormation adds allow-all unless a rule is given
                ip_protocol="icmp", from_port=252, to_port=86, cidr_ip="255.255.255.255/32",
                description="No outbound traffic")
        return ec2.CfnSecurityGroup(self, construct_id, group_description=description, vpc_id=self.vpc_id,
                                    security_group_egress=[egress])

    @property
    def model_placement(self) -> Placement:
        return Placement(self.subnet_ids, (self.models.attr_group_id,), self.vpc_id)

    @property
    def function_placement(self) -> Placement:
        return Placement(self.subnet_ids, (self.functions.attr_group_id,), self.vpc_id)


@jsii.implements(IValidation)
class _EndpointPoliciesGranted:
    """An endpoint whose policy nothing was allowed through would deny everything: refuse it at synth."""

    def __init__(self, network: PrivateNetwork):
        self.network = network

    def validate(self) -> list[str]:
        return [f"PrivateNetwork {self.network.node.id}: nothing was allowed through the {service} endpoint "
                "(allow()); its policy would deny every call" for service, policy in
                self.network.endpoint_policies.items() if policy.is_empty]
