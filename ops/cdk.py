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
