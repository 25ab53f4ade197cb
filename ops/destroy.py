"""`make destroy`: `cdk destroy`, then say plainly what stays behind on purpose and how to remove it.

    python -m ops.destroy [CDK ARGUMENTS ...]        (make destroy CDK_ARGS="-c a=b")

Everything the stack made goes with it (failed deploys included), except what a setting asked to keep:
- retain_bucket=true keeps the image bucket and its images;
- api_logging=create-role keeps API Gateway's account-wide CloudWatch Logs role and the account setting naming it:
  every API of the account and region logs through that one role, so deleting it would break their logging;
- batch jobs (make batch) log to SageMaker's own /aws/sagemaker/TransformJobs group, which no stack owns.
"""

from __future__ import annotations

import sys
from typing import Callable

from deployment.settings import SettingsError, load_settings
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


def main(argv=None, run: Callable = cdk.run_cdk, session=None, out=sys.stdout) -> int:
    cdk_args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings(cdk.context_pairs(cdk_args))
    except SettingsError as error:
        print(error, file=out)
        return 2
    session = session or cdk.session(settings.region)
    outputs = cdk.stack_outputs(session.client("cloudformation"), settings.stack_name) or {}
    code = run("destroy", settings.stack_name, cdk_args)
    if code != 0:
        print(f"make destroy: cdk destroy failed (exit {code}); run it again, or see the stack's events in the "
              "CloudFormation console.", file=out)
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
