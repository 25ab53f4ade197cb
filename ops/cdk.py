"""What the deploy and destroy wrappers share: CDK arguments, running the CDK CLI, reading a stack's outputs."""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Mapping, Optional, Sequence


def cli_region(explicit: Optional[str] = None, environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The region as the AWS CLI and the CDK CLI pick it: an explicit one (--region, the region setting), then
    AWS_REGION ("overrides the values in the environment variable AWS_DEFAULT_REGION and the profile setting
    region": AWS CLI User Guide, "Environment variables to configure the AWS CLI"), then AWS_DEFAULT_REGION; None
    leaves the profile's to boto3. botocore itself reads AWS_DEFAULT_REGION only (its config chain), so without this
    make preflight could check one region while cdk deploy deploys to another."""
    return explicit or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None


def session(region: Optional[str] = None):
    """A boto3 session in the region cdk deploy uses (cli_region)."""
    import boto3

    return boto3.session.Session(region_name=cli_region(region))


# What is missing before any command may call AWS, in preflight's words (ops.preflight's credentials and region
# checks say the same): the problem, then the fix.
NO_REGION = "no region: neither the region setting nor your AWS configuration names one"
NO_REGION_FIX = "set AWS_REGION (or AWS_DEFAULT_REGION), or -c region=<region>"
NO_CREDENTIALS_FIX = "configure credentials: aws configure, or AWS_PROFILE / AWS_ACCESS_KEY_ID"


def account_problem(aws_session) -> Optional[str]:
    """None when the session names a region and has credentials STS accepts; else one line: what is missing and
    how to give it (never a botocore traceback)."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    if not aws_session.region_name:
        return f"{NO_REGION}; {NO_REGION_FIX}"
    try:
        aws_session.client("sts", config=Config(connect_timeout=5, read_timeout=10, retries={
            "mode": "standard", "max_attempts": 2})).get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        return f"no usable AWS credentials ({type(error).__name__}: {error}); {NO_CREDENTIALS_FIX}"
    return None


def checked_session(region: Optional[str], command: str, out):
    """The session of `region` (cli_region) if AWS can be called with it; else None, after printing the one-line
    problem as `command: ...` (make smoke, logs, destroy and integ check this before they start)."""
    aws_session = session(region)
    problem = account_problem(aws_session)
    if problem is not None:
        print(f"{command}: {problem}", file=out)
        return None
    return aws_session


def settings_and_session(pairs: Sequence[str], command: str, out, aws_session=None):
    """(settings, session) for a command that calls AWS, or None after printing why not: the settings' problems
    (as synth words them) or the session's (checked_session). aws_session: one given (the tests'), not checked."""
    from deployment.settings import SettingsError, load_settings

    try:
        settings = load_settings(pairs)
    except SettingsError as error:
        print(error, file=out)
        return None
    aws_session = aws_session or checked_session(settings.region, command, out)
    return None if aws_session is None else (settings, aws_session)


def context_pairs(cdk_args: Sequence[str]) -> list[str]:
    """The NAME=VALUE of every -c/--context in CDK arguments (they are settings too)."""
    pairs, args = [], list(cdk_args)
    for i, arg in enumerate(args):
        if arg in ("-c", "--context") and i + 1 < len(args):
            pairs.append(args[i + 1])
        elif arg.startswith("--context="):
            pairs.append(arg.split("=", 1)[1])
    return pairs


def cli() -> list[str]:
    """The pinned CDK CLI's command (node_modules/.bin, put on PATH by the Makefile; its CDK variable)."""
    return shlex.split(os.environ.get("CDK", "cdk --no-notices"))


def run_cdk(verb: str, stack_name: str, cdk_args: Sequence[str]) -> int:
    """The pinned CDK CLI with the user's arguments."""
    return subprocess.call(cli() + [verb, stack_name, *cdk_args])


def stack_outputs(cloudformation, stack_name: str) -> Optional[dict]:
    """OutputKey -> OutputValue, or None when the stack does not exist (or cannot be read)."""
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except Exception:
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
