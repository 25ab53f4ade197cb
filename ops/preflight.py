"""`make preflight`: check, with your AWS credentials, everything that can fail a deploy, before it costs 15 minutes
and a rollback. Prints one table (fine / warning / blocker, with what to do) and exits 1 on a blocker.

    python -m ops.preflight [-c NAME=VALUE ...] [--region REGION]

Only read calls are made: STS GetCallerIdentity, SSM GetParameter, Service Quotas, API Gateway GetAccount, IAM
GetRole, CloudFormation DescribeStacks, SageMaker Describe/List, Application Auto Scaling DescribeScalableTargets,
CloudWatch Logs DescribeLogGroups, Secrets Manager DescribeSecret and GetSecretValue (the Hub token's shape: the
value is never printed), Lambda GetAccountSettings, S3 HeadObject, and the Hugging Face Hub's file list of each Hub
model. The region is the one cdk deploy uses (ops.cdk.cli_region: --region, the region setting, AWS_REGION,
AWS_DEFAULT_REGION, the profile). Each check is a function over clients, so tests drive each with botocore's
Stubber.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

from deployment.hosting import deployed_mode, hosting_of
from deployment.model_catalog import S3_URI
from deployment.service_regions import LAMBDA_STREAMING_SOURCE
from deployment.settings import Settings, SettingsError, load_settings
from ops import cdk, cost, prices
from ops.cdk import cli_region

OK, INFO, WARN, BLOCK = "ok", "info", "warning", "BLOCKER"
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# Templates synthesized by aws-cdk-lib 2.x refuse to deploy on a bootstrap stack older than this: their
# CheckBootstrapVersion rule asserts the BootstrapVersion SSM parameter is at least 6 (see any synthesized template's
# Rules section; tests/stacks/test_stack_template.py checks the two agree).
MIN_BOOTSTRAP_VERSION = 6


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


class Clients:
    """boto3 clients of one region, made once each, with explicit timeouts and retries."""

    def __init__(self, region: Optional[str], session=None):
        import boto3
        from botocore.config import Config

        self._session = session or boto3.session.Session(region_name=region)
        self.region = region or self._session.region_name
        self._config = Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 3})
        self._made: dict = {}

    def __call__(self, service: str):
        if service not in self._made:
            self._made[service] = self._session.client(service, region_name=self.region, config=self._config)
        return self._made[service]

    def other(self, service: str, region: str):
        """A client of another region (a resource the settings name by ARN may live there)."""
        return self._session.client(service, region_name=region, config=self._config)


def _code(error) -> str:
    return getattr(error, "response", {}).get("Error", {}).get("Code", "")


# ----------------------------------------------------------------------------------------------------- checks


def credentials(clients) -> tuple[Check, Optional[str]]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        identity = clients("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        return Check("credentials", BLOCK, f"no usable AWS credentials ({type(error).__name__}: {error})",
                     cdk.NO_CREDENTIALS_FIX), None
    return Check("credentials", OK, f"account {identity['Account']} as {identity['Arn']}"), identity["Account"]


def region(settings: Settings, name: Optional[str]) -> Check:
    """What the deployment uses must exist in the region it deploys to: each model's image, its hosting mode (shared
    and serverless are not everywhere), AWS Budgets (deployment.service_regions). Synth checks it only when the
    region setting is set; here it is always known."""
    if not name:
        return Check("region", BLOCK, cdk.NO_REGION, cdk.NO_REGION_FIX)
    missing = settings.region_problems(name)
    if missing:
        return Check("region", BLOCK, "; ".join(missing), "deploy to another region, or change what it lacks")
    return Check("region", OK, f"{name}: every model's image and hosting mode are there")


def bootstrap(clients, account: str, name: str) -> Check:
    from botocore.exceptions import BotoCoreError, ClientError

    fix = f"npx cdk bootstrap aws://{account}/{name}   (once per account and region)"
    try:
        version = int(clients("ssm").get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"])
    except ClientError as error:
        if _code(error) == "ParameterNotFound":
            return Check("CDK bootstrap", BLOCK, f"{name} is not bootstrapped for the CDK", fix)
        return Check("CDK bootstrap", BLOCK, f"could not read {BOOTSTRAP_PARAMETER}: {_code(error)}", fix)
    except (BotoCoreError, ValueError) as error:
        return Check("CDK bootstrap", BLOCK, f"could not read {BOOTSTRAP_PARAMETER}: {error}", fix)
    if version < MIN_BOOTSTRAP_VERSION:
        return Check("CDK bootstrap", BLOCK, f"bootstrap version {version} is older than {MIN_BOOTSTRAP_VERSION}",
                     fix.replace("(once", "(again to upgrade; once"))
    return Check("CDK bootstrap", OK, f"version {version}")


def _endpoint_usage(clients, ours: set[str]) -> Counter:
    """Instances per type of the account's other endpoints (they count against the same quota)."""
    sagemaker = clients("sagemaker")
    usage: Counter = Counter()
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page["Endpoints"]:
            if summary["EndpointName"] in ours or summary["EndpointStatus"] in ("Failed", "Deleting"):
                continue
            endpoint = sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
            config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
            counts = {v["VariantName"]: v.get("CurrentInstanceCount", 0) for v in endpoint.get("ProductionVariants", [])}
            for variant in config["ProductionVariants"]:
                if "InstanceType" in variant:
                    usage[variant["InstanceType"]] += counts.get(variant["VariantName"], variant.get(
                        "InitialInstanceCount", 0))
    return usage


def wanted_instances(settings: Settings) -> Counter:
    """Instances per type the deployment may run at most: each realtime or async model's ceiling, and the shared
    endpoint's instances once (serverless models need none)."""
    wanted: Counter = Counter()
    for model in settings.catalog:
        needs = hosting_of(model).instances() if model.existing_endpoint is None else None
        if needs:
            wanted[needs[0]] += needs[1]
    fleet = settings.shared_fleet
    if fleet is not None:  # one endpoint for them all, at its most
        wanted[fleet.instance_type] += fleet.maximum
    return wanted


def quotas(settings: Settings, clients) -> list[Check]:
    """Endpoint-usage quota per instance type: the first deploy needs the models' instances, every later update
    twice that (SageMaker starts the new fleet before it stops the old one: blue/green)."""
    from botocore.exceptions import BotoCoreError, ClientError

    wanted = wanted_instances(settings)
    batches = batch_instances(settings)
    if not wanted and not batches:
        return []
    try:
        values = {}
        for page in clients("service-quotas").get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
            for quota in page["Quotas"]:
                values[quota["QuotaName"]] = int(quota["Value"])
        usage = _endpoint_usage(clients, {settings.endpoint_name(m) for m in settings.catalog})
    except (BotoCoreError, ClientError) as error:
        return [Check("instance quotas", WARN, f"could not read SageMaker quotas or endpoints: {error}",
                      "check Service Quotas > SageMaker > '<type> for endpoint usage' yourself")]
    checks = []
    for instance_type, count in sorted(wanted.items()):
        name = f"{instance_type} for endpoint usage"
        quota, used = values.get(name), usage[instance_type]
        fix = (f"request an increase of '{name}' to at least {used + 2 * count} (Service Quotas console, or aws "
               f"service-quotas request-service-quota-increase --service-code sagemaker ...)")
        where = f" ({used} already in use by other endpoints)" if used else ""
        if quota is None:
            checks.append(Check(f"quota {instance_type}", WARN, f"no quota named '{name}' found", fix))
        elif quota < used + count:
            checks.append(Check(f"quota {instance_type}", BLOCK, f"quota {quota}{where}; the deploy needs {count}",
                                fix))
        elif quota < used + 2 * count:
            checks.append(Check(f"quota {instance_type}", WARN,
                                f"quota {quota}{where}: the first deploy fits, but every update (code, image, "
                                f"instance type) runs old and new fleets side by side and needs {2 * count}; it "
                                "would fail with ResourceLimitExceeded", fix))
        else:
            checks.append(Check(f"quota {instance_type}", OK,
                                f"quota {quota}{where} covers {count} and the {2 * count} an update needs"))
    for instance_type, models in sorted(batches.items()):
        # Not a deploy blocker: the stack deploys, but make batch's job fails with ResourceLimitExceeded (new
        # accounts start at 0 for many types: "'ml.m5.large for transform job usage' is 0 Instances").
        name = f"{instance_type} for transform job usage"
        quota = values.get(name)
        fix = f"request '{name}' of at least 1 (Service Quotas console), or pass make batch a type you have"
        label = f"batch quota {instance_type}"
        if quota is None:
            checks.append(Check(label, WARN, f"no quota named '{name}' found", fix))
        elif quota < 1:
            checks.append(Check(label, WARN, f"quota {quota}: make batch for {', '.join(models)} would fail on its "
                                             "default instances", fix))
        else:
            checks.append(Check(label, OK, f"quota {quota} for the batch jobs of {', '.join(models)}"))
    return checks


def batch_instances(settings: Settings) -> dict[str, list[str]]:
    """The default instance type of each model's batch jobs -> the models (make batch's --instance-type default)."""
    from ops.batch import default_instance_type

    found: dict[str, list[str]] = {}
    for model in settings.catalog:
        if model.batch:
            found.setdefault(default_instance_type(model), []).append(model.name)
    return found


def api_logging(settings: Settings, clients) -> Check:
    """Access logs need the account's API Gateway CloudWatch role (account setting cloudwatchRoleArn)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if settings.api_logging == "off":
        return Check("API Gateway logging", OK, "api_logging=off: no access logs, no account role needed")
    try:
        role_arn = clients("apigateway").get_account().get("cloudwatchRoleArn")
    except (BotoCoreError, ClientError) as error:
        return Check("API Gateway logging", WARN, f"could not read the API Gateway account settings: {error}")
    if settings.api_logging == "create-role":
        if role_arn:
            return Check("API Gateway logging", WARN, f"the account already logs through {role_arn}; "
                         "api_logging=create-role replaces that account-wide setting with the stack's own role",
                         "use -c api_logging=account-role to keep the account's role")
        return Check("API Gateway logging", OK, "the stack creates the account's API Gateway CloudWatch role (it "
                     "stays after destroy: other APIs of the region may log through it)")
    fix = ("deploy with -c api_logging=create-role (the stack creates the account-wide role and setting, kept after "
           "destroy), or -c api_logging=off (no access logs)")
    if not role_arn:
        return Check("API Gateway logging", BLOCK, "this account and region have no API Gateway CloudWatch Logs "
                     "role (account setting cloudwatchRoleArn); the stage would fail to create and the stack roll "
                     "back", fix)
    try:
        clients("iam").get_role(RoleName=role_arn.rsplit("/", 1)[-1])
    except ClientError as error:
        if _code(error) == "NoSuchEntity":
            return Check("API Gateway logging", BLOCK, f"the account setting names {role_arn}, which no longer "
                         "exists", fix)
    except BotoCoreError:
        pass
    return Check("API Gateway logging", OK, f"the account logs through {role_arn}")


def stack_state(clients, stack_name: str) -> tuple[Check, bool]:
    """(check, whether the stack exists)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stack = clients("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            return Check("stack", OK, f"{stack_name} is new: this deploy creates it"), False
        return Check("stack", WARN, f"could not describe {stack_name}: {_code(error)}"), False
    except BotoCoreError as error:
        return Check("stack", WARN, f"could not describe {stack_name}: {error}"), False
    status = stack["StackStatus"]
    if status == "ROLLBACK_COMPLETE" or status.endswith("_IN_PROGRESS"):
        blocked = status == "ROLLBACK_COMPLETE"
        return Check("stack", BLOCK if blocked else WARN, f"{stack_name} is {status}",
                     "make destroy, then deploy again" if blocked else "wait for it to finish"), True
    if status.endswith("_FAILED"):
        return Check("stack", WARN, f"{stack_name} is {status} (a failed deploy left its resources for you to read "
                     "the logs)", "deploying again continues from there; make destroy removes everything"), True
    return Check("stack", OK, f"{stack_name} is {status}: this deploy updates it"), True


def _each_created_endpoint(settings: Settings, label: str, check) -> list[Check]:
    """check(model, endpoint_name) -> checks, for each endpoint the stack creates; a missing endpoint
    (ValidationException) adds nothing, any other failure to read is a warning, not a crash."""
    from botocore.exceptions import BotoCoreError, ClientError

    checks = []
    for model in settings.catalog:
        if model.existing_endpoint is not None:
            continue
        name = settings.endpoint_name(model)
        try:
            checks += check(model, name)
        except ClientError as error:
            if _code(error) != "ValidationException":
                checks.append(Check(f"{label} {model.name}", WARN, f"could not check {name}: {_code(error)}"))
        except BotoCoreError as error:
            checks.append(Check(f"{label} {model.name}", WARN, f"could not check {name}: {error}"))
    return checks


def names_free(settings: Settings, clients, stack_exists: bool) -> list[Check]:
    """Names the stack creates must not exist outside it: the endpoint and its log group."""
    from botocore.exceptions import ClientError

    if stack_exists:
        return []

    def check(model, name):
        found, group = [], f"/aws/sagemaker/Endpoints/{name}"
        groups = clients("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        if any(g["logGroupName"] == group for g in groups):
            found.append(Check(f"names {model.name}", BLOCK, f"log group {group} already exists (an earlier "
                               "endpoint of that name); the stack creates it", f"aws logs delete-log-group "
                               f"--log-group-name {group}   (or -c stack_name=<another>)"))
        try:
            clients("sagemaker").describe_endpoint(EndpointName=name)
        except ClientError as error:
            if _code(error) == "ValidationException":  # no such endpoint: the name is free
                return found
            raise
        return found + [Check(f"names {model.name}", BLOCK, f"endpoint {name} already exists outside this stack",
                              "delete it, or deploy under another stack_name")]

    return _each_created_endpoint(settings, "names", check) or [
        Check("names", OK, "endpoint names and their log groups are free")]


def hosting_changes(settings: Settings, clients, stack_exists: bool) -> list[Check]:
    """Updates SageMaker refuses, caught before CloudFormation tries them and rolls back: switching a deployed
    endpoint between serverless and instances (Developer Guide, "Update a serverless endpoint": updating a real-time
    endpoint to serverless is not supported; the other way, and switches between real-time and async, are assumed to
    fail alike: unverified, so the check errs on the side of a fresh stack), and
    a new instance type on a variant registered for autoscaling (Developer Guide, "Update endpoints that use auto
    scaling": the update fails while the variant is a scalable target)."""
    if not stack_exists:
        return []

    def check(model, name):
        sagemaker = clients("sagemaker")
        endpoint = sagemaker.describe_endpoint(EndpointName=name)  # ValidationException: not deployed yet
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        deployed = deployed_mode(config)
        if deployed != model.hosting:
            return [Check(f"hosting {model.name}", BLOCK, f"{name} runs {deployed}; SageMaker cannot switch a "
                          f"deployed endpoint to {model.hosting} in place",
                          "make destroy first, or deploy beside it with -c stack_name=<another>")]
        if deployed != "serverless" and variant.get("InstanceType") != model.instance_type:
            targets = clients("application-autoscaling").describe_scalable_targets(
                ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{name}/variant/{variant['VariantName']}"],
            )["ScalableTargets"]
            if targets:
                return [Check(f"hosting {model.name}", BLOCK, f"{name} is autoscaled on {variant.get('InstanceType')}; "
                              f"SageMaker refuses to change an autoscaled variant to {model.instance_type}",
                              f"deploy once with -c {model.name}.max_instances={hosting_of(model).min_instances} "
                              "and the old "
                              "type, then change the type, then restore max_instances")]
        return []

    return _each_created_endpoint(settings, "hosting", check)


def references(settings: Settings, clients) -> list[Check]:
    """What the stack points at must exist: the hub token secret, S3 artifacts, existing endpoints, the Cognito user
    pool of auth=cognito (looked up in its own region: the ARN names it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    checks = []
    if settings.hub_token_secret:
        try:
            clients("secretsmanager").describe_secret(SecretId=settings.hub_token_secret)
            checks.append(Check("hub token secret", OK, settings.hub_token_secret))
        except (BotoCoreError, ClientError) as error:
            checks.append(Check("hub token secret", BLOCK, f"{settings.hub_token_secret}: {_code(error) or error}",
                                "create it (aws secretsmanager create-secret --name ... --secret-string hf_...)"))
    if settings.cognito_user_pool_arn:
        arn = settings.cognito_user_pool_arn
        pool_region, pool_id = arn.split(":")[3], arn.rsplit("/", 1)[1]
        try:
            client = clients("cognito-idp") if pool_region == clients.region else clients.other("cognito-idp",
                                                                                                 pool_region)
            pool = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
            checks.append(Check("cognito user pool", OK, f"{pool.get('Name', pool_id)} ({pool_id})"))
        except (BotoCoreError, ClientError) as error:
            checks.append(Check("cognito user pool", BLOCK, f"{arn}: {_code(error) or error}",
                                "give the ARN of an existing user pool (aws cognito-idp list-user-pools)"))
    for model in settings.catalog:
        if model.source_type == "s3":
            match = S3_URI.match(model.source)
            try:
                clients("s3").head_object(Bucket=match["bucket"], Key=match["key"])
                checks.append(Check(f"artifact {model.name}", OK, model.source))
            except (BotoCoreError, ClientError) as error:
                checks.append(Check(f"artifact {model.name}", BLOCK, f"{model.source}: {_code(error) or error}",
                                    "upload the model.tar.gz there (same region as the stack)"))
        if model.existing_endpoint is not None:
            try:
                status = clients("sagemaker").describe_endpoint(
                    EndpointName=model.existing_endpoint)["EndpointStatus"]
                checks.append(Check(f"endpoint {model.name}", OK if status == "InService" else WARN,
                                    f"{model.existing_endpoint} is {status}"))
            except (BotoCoreError, ClientError) as error:
                checks.append(Check(f"endpoint {model.name}", BLOCK, f"{model.existing_endpoint}: "
                                    f"{_code(error) or error}", "deploy it first (e.g. from JumpStart)"))
    return checks


def network(settings: Settings, clients) -> list[Check]:
    """A VPC of yours (vpc_id): its subnets are there, in two zones or more, and its VPC endpoints fit the setting.
    Both fail a deploy late otherwise: SageMaker refuses one zone, and a second interface endpoint with private
    DNS for a service clashes with the first."""
    from botocore.exceptions import BotoCoreError, ClientError

    if settings.vpc_id is None:
        return []
    fix_subnets = "give subnet_ids of that VPC in at least two Availability Zones"
    try:
        subnets = clients("ec2").describe_subnets(SubnetIds=list(settings.subnet_id_list))["Subnets"]
        endpoints = clients("ec2").describe_vpc_endpoints(
            Filters=[{"Name": "vpc-id", "Values": [settings.vpc_id]}])["VpcEndpoints"]
    except (BotoCoreError, ClientError) as error:
        return [Check("network", BLOCK, f"{settings.vpc_id}: {_code(error) or error}", fix_subnets)]
    checks = []
    elsewhere = sorted(s["SubnetId"] for s in subnets if s["VpcId"] != settings.vpc_id)
    zones = {s["AvailabilityZone"] for s in subnets}
    if elsewhere:
        checks.append(Check("network subnets", BLOCK, f"{', '.join(elsewhere)} not in {settings.vpc_id}", fix_subnets))
    elif len(zones) < 2:
        checks.append(Check("network subnets", BLOCK, f"every subnet is in {', '.join(sorted(zones))}: SageMaker "
                            "needs two zones, even for one instance", fix_subnets))
    else:
        checks.append(Check("network subnets", OK, f"{len(subnets)} subnets in {', '.join(sorted(zones))}"))
    region = clients.region
    live = [e for e in endpoints if e.get("State", "available") not in ("deleted", "deleting", "failed", "rejected")]
    present = {e["ServiceName"].removeprefix(f"com.amazonaws.{region}.") for e in live}
    wanted = set(settings.interface_services) | {"s3"}
    skipped = set(settings.skipped_endpoints)
    if not settings.vpc_endpoints:
        skipped = wanted
    # A second interface endpoint with private DNS for a service fails ("private-dns-enabled cannot be set because
    # there is already a conflicting DNS domain"), and so does a second S3 gateway endpoint on a route table ("route
    # table ... already has a route with destination-prefix-list-id"): EC2's answers, seen in CloudFormation
    # deploys that hit them.
    private_dns = {e["ServiceName"].removeprefix(f"com.amazonaws.{region}.") for e in live
                   if e.get("VpcEndpointType", "Interface") == "Interface" and e.get("PrivateDnsEnabled")}
    s3_tables = {t for e in live if e.get("VpcEndpointType") == "Gateway" and e["ServiceName"].endswith(".s3")
                 for t in e.get("RouteTableIds", [])}
    clash = sorted(s for s in (private_dns & set(settings.interface_services)) - skipped)
    if "s3" not in skipped and s3_tables & set(settings.route_table_id_list):
        clash.append("s3")
    if clash:
        checks.append(Check("network endpoints", BLOCK, f"{settings.vpc_id} already has endpoints for "
                            f"{', '.join(clash)} (private DNS, or S3 on these route tables): the stack's own would "
                            "fail to create", "-c vpc_endpoints_skip=" + ",".join(sorted(set(clash) | (skipped & wanted)))))
    missing = sorted((skipped & wanted) - present)
    if missing:
        checks.append(Check("network endpoints", WARN, f"{settings.vpc_id} has no endpoint for {', '.join(missing)}, "
                            "which the stack then does not make either",
                            "add them, or give the VPC a NAT gateway, or let the stack make them (vpc_endpoints_skip)"))
    if not clash and not missing:
        made = sorted(wanted - skipped)
        checks.append(Check("network endpoints", OK, (f"the stack creates endpoints for {', '.join(made)}" if made
                                                      else "the stack creates no endpoints")
                            + (f"; {', '.join(sorted(skipped & wanted))} are the VPC's own" if skipped & wanted
                               else "")))
    if not settings.restricts_endpoints and set(wanted) - skipped:
        checks.append(Check("network endpoint policies", INFO, "the endpoints the stack makes keep AWS's default "
                            "policy: every workload of the VPC uses them",
                            "-c vpc_endpoint_policies=restrict to let only this stack's calls through them (and "
                            "cut everything else's)"))
    return checks


def hub_token_shape(settings: Settings, clients) -> list[Check]:
    """A JSON secret must say which key holds the token (hub_token_field): without it the whole string would reach
    the model's environment (TGI and the toolkit read HF_TOKEN as it is). The value is read, never printed."""
    import json

    from botocore.exceptions import BotoCoreError, ClientError

    if not settings.hub_token_secret:
        return []
    try:
        value = clients("secretsmanager").get_secret_value(SecretId=settings.hub_token_secret).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        return [Check("hub token shape", WARN, f"could not read the secret to check its shape: "
                      f"{_code(error) or type(error).__name__}", "make sure the token is its whole value, or a JSON "
                      "object with hub_token_field naming the token's key")]
    try:
        data = json.loads(value or "")
    except ValueError:
        data = None
    field = settings.hub_token_field
    if isinstance(data, dict):
        if field is None:
            return [Check("hub token shape", BLOCK, f"{settings.hub_token_secret} holds a JSON object with keys "
                          f"{', '.join(sorted(data))[:200]}: the model would get the whole object as its token",
                          "-c hub_token_field=<the key of the token>")]
        if not isinstance(data.get(field), str) or not data[field]:
            return [Check("hub token shape", BLOCK, f"{settings.hub_token_secret} has no text under {field!r}",
                          "-c hub_token_field=<the key of the token>, or fix the secret")]
        return [Check("hub token shape", OK, f"the token under {field!r} reaches the model, nothing else")]
    if field is not None:
        return [Check("hub token shape", BLOCK, f"{settings.hub_token_secret} is not a JSON object, and "
                      f"hub_token_field is {field!r}", "remove hub_token_field: the whole value is the token")]
    return [Check("hub token shape", OK, "the secret's whole value is the token")]


# Weight files a repository may hold: safetensors hold tensors only; the rest are pickles that run their author's
# code when loaded (torch.load; the Hugging Face Hub's "Pickle Scanning" page).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")


class HubListing:
    """The file names of a Hugging Face Hub repository at a revision (the user's network; HF_TOKEN for gated ones)."""

    def __call__(self, repo_id: str, revision: Optional[str]) -> list[str]:
        import os

        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, revision=revision, token=os.environ.get("HF_TOKEN") or None)
        return [sibling.rfilename for sibling in info.siblings]


def hub_weights(settings: Settings, listing: Callable[[str, Optional[str]], list[str]]) -> list[Check]:
    """Each Hub model's weights at its revision include safetensors, unless it allows pickle weights: the
    containers that download for themselves (TGI, the toolkit's HF_MODEL_ID) load pickle files when a repository
    has nothing else, before any code of ours runs."""
    checks = []
    for model in settings.catalog:
        if not model.hub_id or model.allow_pickle_weights:
            continue
        label, at = f"hub weights {model.name}", f"{model.hub_id}@{(model.revision or 'latest')[:12]}"
        try:
            weights = [f for f in listing(model.hub_id, model.revision) if f.endswith(WEIGHT_SUFFIXES)]
        except Exception as error:  # offline, gated, missing: the deploy may still work; say what was not checked
            checks.append(Check(label, WARN, f"could not list {at}: {type(error).__name__}",
                                "check that its weights are safetensors (or set allow_pickle_weights=true)"))
            continue
        if not weights:
            checks.append(Check(label, WARN, f"{at} lists no weight files", "check the repository and revision"))
        elif not any(f.endswith(".safetensors") for f in weights):
            checks.append(Check(label, BLOCK, f"{at} has only pickle weights ({', '.join(sorted(weights)[:3])}"
                                f"{', ...' if len(weights) > 3 else ''}): loading them runs code of the file's author",
                                f"a revision with safetensors, or -c {model.name}.allow_pickle_weights=true if you "
                                "trust it"))
        else:
            checks.append(Check(label, OK, f"{at} has safetensors"))
    return checks


# Lambda keeps this much of an account's concurrency unreserved: "You can reserve up to the Unreserved account
# concurrency value minus 100" (Lambda Developer Guide, "Configuring reserved concurrency").
LAMBDA_UNRESERVED_FLOOR = 100


def authorizer_concurrency(settings: Settings, clients, stack_exists: bool) -> list[Check]:
    """The key authorizer's reserved concurrency must fit the account: new accounts may have 10 in all, and Lambda
    refuses a reservation below the floor ("Specified ReservedConcurrentExecutions for function decreases account's
    UnreservedConcurrentExecution below its minimum value")."""
    from botocore.exceptions import BotoCoreError, ClientError

    wanted = settings.authorizer_concurrency
    if settings.auth != "api_key" or not settings.bearer_keys or not wanted:
        return []
    fix = ("-c authorizer_concurrency=0 (reserve none), or ask for more 'Concurrent executions' (Service Quotas > "
           "AWS Lambda)")
    try:
        unreserved = clients("lambda").get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    except (BotoCoreError, ClientError, KeyError) as error:
        return [Check("authorizer concurrency", WARN, f"could not read Lambda's account settings: {error}", fix)]
    left = unreserved - wanted
    if left >= LAMBDA_UNRESERVED_FLOOR:
        return [Check("authorizer concurrency", OK, f"{wanted} reserved for the key authorizer leaves {left} "
                      "unreserved")]
    # A deployed stack's authorizer may hold its reservation already (then it is not in `unreserved`).
    return [Check("authorizer concurrency", WARN if stack_exists else BLOCK,
                  f"the account has {unreserved} unreserved Lambda concurrency; reserving {wanted} for the key "
                  f"authorizer leaves {left}, under the {LAMBDA_UNRESERVED_FLOOR} Lambda keeps unreserved"
                  + (" (unless this stack's authorizer holds them already)" if stack_exists else ""), fix)]


def hub_revisions(settings: Settings) -> list[Check]:
    loose = [m.name for m in settings.catalog if m.hub_id and not m.revision]
    if not loose:
        return []
    return [Check("hub revisions", WARN, f"{', '.join(loose)} download the Hub's latest revision at every instance "
                  "start: a change upstream changes what runs", "pin one: -c <model>.revision=<commit sha>")]


def streaming_region(settings: Settings, region_name: str) -> list[Check]:
    """A streaming model needs Lambda response streaming in the region, which AWS lists only on a web page
    (deployment.service_regions.LAMBDA_STREAMING_SOURCE): said before the deploy, not after it."""
    streaming = [m.name for m in settings.catalog if m.streaming]
    if not streaming:
        return []
    return [Check("streaming region", WARN, f"{', '.join(streaming)} stream through Lambda response streaming, which "
                  f"is not in every region and has no API that says where ({LAMBDA_STREAMING_SOURCE})",
                  f"check {region_name} on https://builder.aws.com/build/capabilities (AWS Lambda, response "
                  "streaming), or deploy with -c <model>.streaming=false; make integ asserts the streams")]


class _UnitPrices:
    """Every instance-hour priced 1: what costs nothing idle yet something busy, whatever the region's prices."""

    @staticmethod
    def hourly(instance_type: str) -> Optional[float]:
        return 1.0

    @staticmethod
    def serverless_gb_second() -> Optional[float]:
        return None


def _scales_to_zero(model) -> bool:
    config = hosting_of(model)
    line = config.cost(_UnitPrices()) if config is not None and model.on_instances else None
    return line is not None and line.idle_monthly == 0 and (line.hourly_max or 0) > 0


def unwatched_spend(settings: Settings) -> list[Check]:
    """A model that scales to zero costs nothing idle, but a trickle of requests keeps its instance up all day
    (docs/security.md); its InstanceHours alarm and the monthly_budget_usd budget tell alarm_email, and no one
    without it. Pure: make deploy says it even when it skips the rest of preflight."""
    waking = [model.name for model in settings.catalog if _scales_to_zero(model)]
    fleet = settings.shared_fleet
    if fleet is not None and fleet.all_to_zero:
        waking.append("the shared endpoint")
    if not waking:
        return []
    fix = "-c alarm_email=<you@example.com> -c monthly_budget_usd=<USD a month> (docs/security.md)"
    said = (f"{', '.join(waking)} scale{'s' if len(waking) == 1 else ''} to zero and cost nothing idle, but a "
            "request every ~15 minutes keeps an instance running all day")
    if settings.alarm_email is None:
        return [Check("spend watch", WARN, f"{said}, and no one is told: no alarm_email", fix)]
    if settings.monthly_budget_usd is None:
        return [Check("spend watch", INFO, f"{said}: the InstanceHours alarm mails {settings.alarm_email}; no budget "
                      "on the account's SageMaker spend", fix)]
    return [Check("spend watch", OK, f"{', '.join(waking)}: the InstanceHours alarm and a "
                  f"${settings.monthly_budget_usd:g} budget mail {settings.alarm_email}")]


def hourly_cost(settings: Settings, region_name: Optional[str], clients=None) -> Check:
    """What the deployment costs idle (ops/cost.py has the whole table: make cost). A region ops/prices.py does not
    record is priced by the AWS Price List API with `clients`' credentials."""
    live = None
    if clients is not None and region_name not in prices.PRICED_REGIONS:
        live = prices.PriceList(clients.other("pricing", prices.PRICE_LIST_REGION))
    try:
        cost_rows = [r for r in cost.rows(settings, region_name, live) if r.hosting != "batch"]  # billed per job
    except prices.PriceListError as error:
        return Check("cost", WARN, f"{region_name} is not in ops/prices.py and {error}",
                     "see https://aws.amazon.com/sagemaker/pricing/")
    hourly = sum(r.hourly_min or 0 for r in cost_rows)
    unknown = sorted({r.instance for r in cost_rows if r.hourly_min is None and r.hosting != "existing"})
    detail = f"${hourly:.2f}/hour while deployed (~${hourly * prices.HOURS_PER_MONTH:,.0f}/month) at the minimum, " \
             "idle or not"
    if live is not None:
        detail += " (AWS Price List API)"
    if any(r.hosting == "serverless" for r in cost_rows):
        detail += "; serverless models bill per second of use"
    if unknown:
        where = "the AWS Price List API lists" if live is not None else "ops/prices.py has"
        return Check("cost", WARN, f"{detail} plus {', '.join(unknown)} in {region_name}, for which {where} no "
                     "price", "see https://aws.amazon.com/sagemaker/pricing/")
    return Check("cost", INFO, detail + "; make cost has the table; make destroy stops it")


def run(settings: Settings, clients, hub_listing: Optional[Callable] = None) -> list[Check]:
    checks = []
    identity, account = credentials(clients)
    checks.append(identity)
    region_check = region(settings, clients.region)
    checks.append(region_check)
    if account is None or region_check.status == BLOCK:
        return checks
    stack, exists = stack_state(clients, settings.stack_name)
    checks += [bootstrap(clients, account, clients.region), stack, *quotas(settings, clients),
               api_logging(settings, clients), *names_free(settings, clients, exists),
               *hosting_changes(settings, clients, exists), *references(settings, clients),
               *network(settings, clients), *hub_token_shape(settings, clients),
               *authorizer_concurrency(settings, clients, exists),
               *hub_revisions(settings), *hub_weights(settings, hub_listing or HubListing()),
               *streaming_region(settings, clients.region), *unwatched_spend(settings),
               hourly_cost(settings, clients.region, clients)]
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.status:<8} {check.name:<{width}}  {check.detail}")
        if check.fix and check.status != OK:
            lines.append(f"{'':<8} {'':<{width}}  -> {check.fix}")
    blockers = sum(c.status == BLOCK for c in checks)
    lines.append("")
    lines.append(f"{blockers} blocker(s): fix them before deploying." if blockers else "Ready to deploy.")
    return "\n".join(lines)


def main(argv=None, clients_factory: Callable = Clients, out=sys.stdout, hub_listing: Optional[Callable] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--region", help="region to check (default: the region setting, else your AWS config)")
    # Other CDK arguments (make passes CDK_ARGS to every command) are not ours: ignored.
    args, _ = parser.parse_known_args(argv)
    try:
        settings = load_settings(args.context)
    except SettingsError as error:
        print(error, file=out)
        return 2
    checks = run(settings, clients_factory(cli_region(args.region or settings.region)), hub_listing)
    print(render(checks), file=out)
    return 1 if any(c.status == BLOCK for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
