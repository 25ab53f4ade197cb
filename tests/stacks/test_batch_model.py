"""Batch transform's SageMaker model: the BatchModel construct on its own (aws_cdk.assertions) and in the app."""

from __future__ import annotations

import re

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from deployment.container_images import ContainerImage
from deployment.settings import SettingsError, load_settings
from stacks.batch_model import BatchModel
from stacks.image_bucket import ImageBucket

IMAGE = ContainerImage.from_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:1")
BATCH = {"models": "stable-diffusion,gpt2-cpu", "stable-diffusion.batch": "true",
         "stable-diffusion.batch_timeout_seconds": "1800"}


def _stack(**bucket_props):
    stack = Stack(App(), "Test")
    bucket = ImageBucket(stack, "Images", **{"batch_prefix": "batch/", **bucket_props})
    return stack, bucket


def _role_statements(template: dict, role_prefix: str) -> list[dict]:
    role = next(r for k, r in template["Resources"].items()
                if k.startswith(role_prefix) and r["Type"] == "AWS::IAM::Role")
    return role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def test_the_construct_alone_makes_a_model_with_a_role_scoped_to_its_batch_folders():
    stack, bucket = _stack()
    batch = BatchModel(stack, "Batch", image=IMAGE, bucket=bucket, model="sd", job_name_prefix="app-sd-batch",
                       environment={"A": "b"}, model_data_url="s3://b/k.tar.gz",
                       model_data_arn="arn:aws:s3:::b/k.tar.gz")
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::SageMaker::Model", {
        "ExecutionRoleArn": {"Fn::GetAtt": [Match.string_like_regexp("BatchExecutionRole"), "Arn"]},
        "PrimaryContainer": {"Image": IMAGE.uri, "ModelDataUrl": "s3://b/k.tar.gz", "Environment": {"A": "b"}}})
    statements = {s["Sid"]: s for s in _role_statements(template.to_json(), "BatchExecutionRole")}
    assert sorted(statements) == ["EcrLogin", "ListBatchInputs", "PublishJobMetrics", "PullModelImage",
                                  "ReadBatchInputs", "ReadModelArtifact", "UseTransformLogGroup", "WriteBatchOutputs",
                                  "WriteOwnJobLogs"]
    assert statements["ReadBatchInputs"]["Action"] == "s3:GetObject"
    assert statements["ReadBatchInputs"]["Resource"]["Fn::Join"][1][1] == "/batch/sd/*/input/*"
    assert statements["WriteBatchOutputs"]["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert statements["WriteBatchOutputs"]["Resource"]["Fn::Join"][1][1] == "/batch/sd/*/output/*"
    assert statements["ListBatchInputs"]["Condition"] == {"StringLike": {"s3:prefix": ["batch/sd/*/input/*"]}}
    assert statements["WriteOwnJobLogs"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements["WriteOwnJobLogs"]["Resource"]["Fn::Join"][1][-1] == \
        ":log-group:/aws/sagemaker/TransformJobs:log-stream:app-sd-batch-*"
    assert statements["PublishJobMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TransformJobs"}}
    assert statements["ReadModelArtifact"]["Resource"] == "arn:aws:s3:::b/k.tar.gz"
    assert batch.job_name_prefix == "app-sd-batch"
    assert (batch.input_prefix, batch.output_prefix) == ("batch/sd/*/input/*", "batch/sd/*/output/*")


def test_a_customer_key_lets_the_role_write_encrypted_outputs():
    from aws_cdk import aws_kms as kms

    stack = Stack(App(), "Test")
    key = kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:us-east-1:123456789012:key/abc")
    bucket = ImageBucket(stack, "Images", batch_prefix="batch/", encryption_key=key)
    BatchModel(stack, "Batch", image=IMAGE, bucket=bucket, model="sd", job_name_prefix="app-sd-batch")
    statements = {s["Sid"]: s for s in _role_statements(Template.from_stack(stack).to_json(), "BatchExecutionRole")}
    assert statements["UseBatchKey"] == {"Sid": "UseBatchKey", "Effect": "Allow",
                                         "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                         "Resource": "arn:aws:kms:us-east-1:123456789012:key/abc",
                                         "Condition": {"StringEquals": {"kms:ViaService": [
                                             {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}]}}}
    assert "ReadModelArtifact" not in statements  # no artifact given, no read of one


def test_the_construct_refuses_what_cannot_work_with_every_problem_named():
    stack, _ = _stack()
    bare = ImageBucket(stack, "Bare")
    with pytest.raises(ValueError) as error:
        BatchModel(stack, "Batch", image=IMAGE, bucket=bare, model="sd", job_name_prefix="Has_Upper" + "x" * 40,
                   model_data_url="s3://b/k.tar.gz")
    message = str(error.value)
    assert "batch_prefix" in message and "job_name_prefix" in message and "go together" in message


def test_the_batch_prefix_may_not_overlap_the_others():
    for prefix in ("images/", "images/batch/", "jobs/", "batch"):
        with pytest.raises(ValueError, match="^" + re.escape(
                "ImageBucket Images: batch_prefix must end with '/', not start with one, and not overlap "
                "key_prefix or job_prefix") + "$"):
            _stack(batch_prefix=prefix, job_prefix="jobs/")


def test_batch_files_expire_like_images_and_abandoned_uploads_go_after_a_day(synth):
    template = synth(**BATCH)
    rules = next(r for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket")[
        "Properties"]["LifecycleConfiguration"]["Rules"]
    batch = next(r for r in rules if r["Id"] == "expire-batch-jobs")
    assert batch == {"Id": "expire-batch-jobs", "Prefix": "batch/", "Status": "Enabled", "ExpirationInDays": 7,
                     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}


def test_only_models_with_batch_get_a_batch_model_and_the_outputs_the_command_reads(synth):
    template = synth(**BATCH)
    models = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::Model"]
    assert sorted(m.rstrip("0123456789ABCDEF") for m in models) == ["Gpt2CpuModel", "StableDiffusionBatchModel",
                                                                    "StableDiffusionModel"]
    outputs = template["Outputs"]
    assert outputs["StableDiffusionBatchJobPrefix"]["Value"] == "sagemakermodelapi-stable-diffusion-batch"
    assert outputs["StableDiffusionBatchModelName"]["Value"] == {
        "Fn::GetAtt": [next(m for m in models if m.startswith("StableDiffusionBatch")), "ModelName"]}
    assert not any(k.startswith("Gpt2CpuBatch") for k in outputs)
    without = synth(models="stable-diffusion,gpt2-cpu")
    assert not any("Batch" in k for k in without["Outputs"])
    rules = next(r for r in without["Resources"].values() if r["Type"] == "AWS::S3::Bucket")[
        "Properties"]["LifecycleConfiguration"]["Rules"]
    assert [r["Id"] for r in rules] == ["expire-generated-images"]


def test_the_batch_model_shares_the_endpoints_code_and_bounds_a_line_by_the_batch_timeout(synth):
    template = synth(**BATCH)
    containers = {k.rstrip("0123456789ABCDEF"): r["Properties"]["PrimaryContainer"]
                  for k, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::Model"}
    endpoint, batch = containers["StableDiffusionModel"], containers["StableDiffusionBatchModel"]
    assert batch["Image"] == endpoint["Image"] and batch["ModelDataUrl"] == endpoint["ModelDataUrl"]
    assert batch["Environment"]["REQUEST_DEADLINE_SECONDS"] == "1800"
    assert batch["Environment"]["SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"] == "1800"
    assert endpoint["Environment"]["REQUEST_DEADLINE_SECONDS"] == "23"
    differing = {k for k in endpoint["Environment"] if endpoint["Environment"][k] != batch["Environment"].get(k)}
    assert differing == {"REQUEST_DEADLINE_SECONDS", "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"}
    # The endpoint's role gains nothing from batch: it reads no batch input.
    assert "batch/" not in str(_role_statements(template, "StableDiffusionExecutionRole"))


def test_a_model_with_a_small_batch_timeout_keeps_the_startup_timeout_for_loading(synth):
    template = synth(**{**BATCH, "stable-diffusion.batch_timeout_seconds": "60"})
    batch = next(r for k, r in template["Resources"].items() if k.startswith("StableDiffusionBatchModel"))
    environment = batch["Properties"]["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"] == "1200"  # the preset's startup timeout
    assert environment["REQUEST_DEADLINE_SECONDS"] == "60"


def test_settings_refuse_batch_where_no_model_is_made_and_timeouts_out_of_range():
    with pytest.raises(SettingsError) as error:
        load_settings(["models=jumpstart-stable-diffusion,stable-diffusion",
                       "jumpstart-stable-diffusion.source=endpoint:js", "jumpstart-stable-diffusion.batch=true",
                       "stable-diffusion.batch_timeout_seconds=3601"])
    message = str(error.value)
    assert "batch needs a model this stack creates" in message
    assert "batch_timeout_seconds must be from 1 to 3600 (got 3601)" in message
    assert load_settings(["stable-diffusion.batch_timeout_seconds=3600"]).catalog[0].batch_timeout_seconds == 3600
    with pytest.raises(SettingsError, match=r"from 1 to 3600 \(got 0\)"):
        load_settings(["batch_timeout_seconds=0"])


def test_job_name_prefixes_fit_sagemaker_names_whatever_the_stack_and_model():
    settings = load_settings(["stack_name=A-Very-Long-Stack-Name-For-Testing", "stable-diffusion.batch=true"])
    prefix = settings.batch_job_prefix(settings.catalog[0])
    # Cut to fit, the cut name ends in a hash of the whole: another model whose name starts alike gets its own.
    assert re.fullmatch(r"a-very-long-stack-name-fo-[0-9a-f]{8}-batch", prefix)
    assert len(prefix) <= 40 and len(prefix + "-20261124t175856-a05e6e") <= 63
    assert load_settings(["stack_name=Short"]).batch_job_prefix(settings.catalog[0]) == "short-stable-diffusion-batch"
