"""Where the AWS features a deployment may use exist: a region without one fails at deploy, after synth and
preflight passed, so settings (with `region` set) and preflight (with the region you deploy to) refuse it first.

Each table names its source and the day it was read. Regions a table does not list are refused, not guessed; the
tests compare the tables that come from cfn-lint's data with the cfn-lint installed (tests/stacks).
"""

from __future__ import annotations

# CloudFormation resource types that exist in only some regions, from cfn-lint 1.58.0's per-region provider schemas
# (cfnlint/data/schemas/providers/<region>.json, schema_date 2026-10-20); a region cfn-lint has no data for
# (me-south-1) is not listed. A template using a type its region lacks fails at once ("Unrecognized resource types").
CFN_RESOURCE_REGIONS = {
    # hosting=shared: one endpoint's instances shared by inference components.
    "AWS::SageMaker::InferenceComponent": frozenset({
        "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
        "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "me-central-1", "sa-east-1",
        "us-east-1", "us-east-2", "us-west-2",
    }),
    # monthly_budget_usd: an AWS Budgets cost budget.
    "AWS::Budgets::Budget": frozenset({
        "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ca-central-1",
        "cn-north-1", "cn-northwest-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    }),
}
CFN_SOURCE = "cfn-lint 1.58.0 region schemas (schema date 2026-10-20)"

# SageMaker Serverless Inference: every resource type exists everywhere (ServerlessConfig is a property of the
# endpoint config), so the table is the service's own list: the SageMaker Developer Guide page "Deploy models with
# Amazon SageMaker Serverless Inference" lists these 21 regions (recorded 2026-12-03; its 2022 text said "all
# commercial regions where SageMaker is available except China", newer regions were not added). The first deploy
# in a region outside it would fail creating the endpoint config.
SERVERLESS_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1", "ap-northeast-1",
    "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "eu-south-1", "me-south-1", "sa-east-1",
})
SERVERLESS_SOURCE = "SageMaker Developer Guide, Serverless Inference (recorded 2026-12-03)"

# What each feature needs, by the name a message uses: (regions, source).
FEATURES = {
    "hosting=shared (inference components)": (CFN_RESOURCE_REGIONS["AWS::SageMaker::InferenceComponent"],
                                              CFN_SOURCE),
    "hosting=serverless": (SERVERLESS_REGIONS, SERVERLESS_SOURCE),
    "monthly_budget_usd (AWS Budgets)": (CFN_RESOURCE_REGIONS["AWS::Budgets::Budget"], CFN_SOURCE),
}


def missing_feature(feature: str, region: str) -> str | None:
    """A problem sentence when `feature` (a FEATURES key) does not exist in `region`, else None."""
    regions, source = FEATURES[feature]
    if region in regions:
        return None
    return (f"{feature} is not available in {region} (it is in {len(regions)} regions: "
            f"{', '.join(sorted(regions))}; {source})")

# Lambda response streaming (streaming=true: the STREAM integrations invoke the function with InvokeWithResponseStream)
# "is not yet available in all AWS Regions" (Lambda Developer Guide, "Response streaming for Lambda functions", read
# 2026-12-05), and the guide sends the reader to Builder Center's "AWS Capabilities by Region" page for the list. No
# list is published in the guide, and no API reports it, so nothing is refused at synth: make preflight warns before
# every streaming deployment, naming the page, and make integ's stream assertions prove it in the region. (API
# Gateway's own response streaming "is available in all AWS Regions": What's New, 2025-11-19.)
LAMBDA_STREAMING_SOURCE = ("Lambda Developer Guide, 'Response streaming for Lambda functions': \"not yet available "
                           "in all AWS Regions\"; the list is Builder Center's 'AWS Capabilities by Region' page")
