"""`make destroy`: `cdk destroy`, then say plainly what stays behind on purpose and how to remove it.

    python -m ops.destroy [--force] [CDK ARGUMENTS ...]        (make destroy [FORCE=1] CDK_ARGS="-c a=b")

It asks before deleting when there is a terminal; without one (a script, CI) only FORCE=1 deletes.

Everything the stack made goes with it (failed deploys included), except what a setting asked to keep:
- retain_bucket=true keeps the image bucket and its images;
- api_logging=create-role keeps API Gateway's account-wide CloudWatch Logs role and the account setting naming it:
  every API of the account and region logs through that one role, so deleting it would break their logging;
- batch jobs (make batch) log to SageMaker's own /aws/sagemaker/TransformJobs group, which no stack owns.
"""

from __future__ import annotations

import sys
from typing import Callable, Optional

from ops import cdk


def kept(settings, outputs: dict) -> list[str]:
    region = settings.region or "<region>"
    notes = []
    role = outputs.get("ApiGatewayCloudWatchRoleName")
    if role:
        notes.append(
            f"IAM role {role}: API Gateway's account-wide CloudWatch Logs role (api_logging=create-role). The "
            f"account setting of {region} still names it, and every API there logs through it. Remove it only "
            f"when no API there needs logging:\n"
            f"    aws apigateway update-account --patch-operations op=replace,path=/cloudwatchRoleArn,value=''\n"
            f"    aws iam delete-role-policy --role-name {role} --policy-name PushToCloudWatchLogs\n"
            f"    aws iam delete-role --role-name {role}")
    bucket = outputs.get("BucketName")
    if bucket and settings.retain_bucket:
        notes.append(f"S3 bucket {bucket} and its images (retain_bucket=true). Remove them with:\n"
                     f"    aws s3 rb s3://{bucket} --force")
    if any(key.endswith("BatchModelName") for key in outputs):
        notes.append(
            "CloudWatch log group /aws/sagemaker/TransformJobs: SageMaker's own, shared by every batch transform "
            "job of the account and region (make batch wrote its streams, named after each job). Its streams "
            f"never expire unless you set a retention:\n"
            f"    aws logs put-retention-policy --log-group-name /aws/sagemaker/TransformJobs "
            f"--retention-in-days {settings.log_retention_days}\n"
            "  SageMaker also keeps the records of finished transform jobs (free; they cannot be deleted).")
    return notes


def confirmed(stack_name: str, region: str, force: bool, ask: Optional[Callable[[str], str]], out) -> bool:
    """Whether to delete: FORCE=1 (--force) says yes; else a person answers at the terminal. Without a terminal
    (a script, CI) and without FORCE=1 nothing is deleted: cdk destroy would refuse to confirm, and a script that
    means to stop the billing says so with FORCE=1."""
    if force:
        return True
    if ask is None:
        print("make destroy: no terminal to confirm at; run `make destroy FORCE=1` to delete the stack without "
              "asking (scripts and CI)", file=out)
        return False
    answer = ask(f"Delete the stack {stack_name} in {region} and everything it made? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def main(argv=None, run: Callable = cdk.run_cdk, session=None, out=sys.stdout,
         ask: Optional[Callable[[str], str]] = None) -> int:
    """ask: how a person at the terminal answers (input); None when there is none (default: input when stdin is
    a terminal)."""
    cdk_args = list(sys.argv[1:] if argv is None else argv)
    force = "--force" in cdk_args or "-f" in cdk_args
    cdk_args = [a for a in cdk_args if a not in ("--force", "-f", "--")]
    if argv is None and ask is None and sys.stdin.isatty():
        ask = input
    ready = cdk.settings_and_session(cdk.context_pairs(cdk_args), "make destroy", out, session)
    if ready is None:
        return 2
    settings, session = ready
    outputs = cdk.stack_outputs(session.client("cloudformation"), settings.stack_name)
    if outputs is None:
        print(f"make destroy: no stack {settings.stack_name} in {session.region_name}: nothing to delete (another "
              "region? set AWS_REGION or -c region=...; another name? -c stack_name=...)", file=out)
        return 0
    if not confirmed(settings.stack_name, session.region_name, force, ask, out):
        return 1
    # Confirmed here: cdk destroy is told so (it would ask again, and without a terminal refuse).
    code = run("destroy", settings.stack_name, ["--force", *cdk_args])
    if code != 0:
        print(f"make destroy: cdk destroy failed (exit {code}); its last lines above say why. Run make destroy "
              f"again; if it fails the same way, the stack's events in the CloudFormation console ({settings.stack_name}, "
              f"{session.region_name}) name the resource that cannot be deleted.", file=out)
        return code
    if cdk.stack_outputs(session.client("cloudformation"), settings.stack_name) is not None:
        print(f"make destroy: {settings.stack_name} still exists (was the destroy cancelled?)", file=out)
        return 1
    notes = kept(settings, outputs)
    if notes:
        print("\nLeft behind on purpose:\n" + "\n".join(f"- {n}" for n in notes), file=out)
    else:
        print("\nNothing left behind: every resource of the stack is deleted.", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
