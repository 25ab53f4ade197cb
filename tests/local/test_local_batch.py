"""make batch against local mode, end to end: the command a user runs (a subprocess), local mode's S3 and its
SageMaker stand-in running the transform job (local/transform.py), images downloaded through their presigned URLs.
And the stand-in's batch transform semantics on their own, with a model that refuses a line."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import boto3
import pytest
from local_rig import ROOT, SETTINGS
from moto import mock_aws

from local.toolkit import ModelError
from local.transform import LocalTransformJobs, TransformError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_batch(local, tmp_path, model: str, lines: list[str], settings: list[str], *extra: str):
    """`python -m ops.batch MODEL INPUT --local READY -c ...` as a user runs it; (the process, manifest entries)."""
    path = tmp_path / "input.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    context = [arg for pair in settings for arg in ("-c", pair)]
    result = subprocess.run([sys.executable, "-m", "ops.batch", model, str(path), "--local",
                             str(local["ready_file"]), "--poll-seconds", "0.2", *context, *extra],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    manifest = tmp_path / "input.jsonl.manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()] if manifest.exists() else []
    return result, entries


def settings_of_shared_local() -> list[str]:
    return [SETTINGS[i + 1] for i in range(0, len(SETTINGS), 2)]


def test_make_batch_draws_every_line_and_each_image_downloads_through_its_url(local, tmp_path):
    lines = [json.dumps({"prompt": "a red apple", "width": 64, "height": 64, "steps": 2, "num_images": 2,
                         "seed": 1}),
             json.dumps({"prompt": "a blue pear", "width": 64, "height": 64, "steps": 2}),
             json.dumps({"prompt": "a green fig", "width": 64, "height": 64, "steps": 2, "seed": 9})]
    result, entries = run_batch(local, tmp_path, "stable-diffusion", lines, settings_of_shared_local(),
                                "--lines-per-file", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 lines in 2 files on 1 x ml.g5.xlarge" in result.stdout
    assert "Completed: 3 of 3 lines have a result, 0 an error" in result.stdout
    assert [e["line"] for e in entries] == [1, 2, 3]
    assert [len(e["result"]["images"]) for e in entries] == [2, 1, 1]
    assert [e["result"]["prompt"] for e in entries] == ["a red apple", "a blue pear", "a green fig"]
    assert entries[0]["result"]["seed"] == 1 and entries[2]["result"]["seed"] == 9
    for entry in entries:
        for image in entry["result"]["images"]:
            with urllib.request.urlopen(image["url"], timeout=30) as response:
                data = response.read()
            assert data.startswith(PNG_SIGNATURE) and data[-8:-4] == b"IEND", image["key"]
    # No URL reaches local mode's console.
    assert "X-Amz-Signature" not in "".join(local["process"].stdout + local["process"].stderr)


def test_bad_lines_stop_the_batch_before_local_mode_sees_anything(local, tmp_path):
    result, entries = run_batch(local, tmp_path, "stable-diffusion",
                                ['{"prompt": "ok", "width": 64, "height": 64}', '{"prompt": "x", "steps": 0}'],
                                settings_of_shared_local())
    assert result.returncode == 2 and entries == []
    assert "line 2: steps must be at least 1" in result.stdout and "line 1" not in result.stdout


def test_a_model_not_started_with_batch_is_refused_with_the_setting_to_add(local, tmp_path):
    result, _ = run_batch(local, tmp_path, "stable-diffusion", ['{"prompt": "ok"}'], ["min_size=64"])
    assert result.returncode == 2 and "-c stable-diffusion.batch=true" in result.stderr


# ------------------------------------------------------------------------------------- the stand-in on its own


class Model:
    """Answers each record with its length; refuses a record containing "refuse" (status 400)."""

    def __init__(self):
        self.records: list[bytes] = []

    def invoke(self, body, content_type, accept):
        self.records.append(body)
        if b"refuse" in body:
            raise ModelError(400, "invalid input: refused")
        return json.dumps({"length": len(body)}).encode(), accept


@pytest.fixture
def jobs():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bucket")
        transforms = LocalTransformJobs()
        transforms.s3 = s3
        transforms.models["batch-model"] = Model()
        yield transforms
        transforms.close()


def create(jobs, name="job-1", **overrides):
    request = {"TransformJobName": name, "ModelName": "batch-model", "BatchStrategy": "SingleRecord",
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in/"}},
                                  "ContentType": "application/json", "SplitType": "Line"},
               "TransformOutput": {"S3OutputPath": "s3://bucket/out", "Accept": "application/json",
                                   "AssembleWith": "Line"},
               "TransformResources": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1}}
    request.update(overrides)
    return jobs.handle("CreateTransformJob", request)


def finish(jobs, name="job-1") -> dict:
    jobs._worker.shutdown(wait=True)  # the one worker has run every queued job
    return jobs.handle("DescribeTransformJob", {"TransformJobName": name})


def test_each_line_is_a_request_and_each_file_gets_its_answers_in_order(jobs):
    jobs.s3.put_object(Bucket="bucket", Key="in/a.jsonl", Body=b'{"x":1}\n{"x":22}\n')
    jobs.s3.put_object(Bucket="bucket", Key="in/b.jsonl", Body=b'{"x":333}')
    assert create(jobs)["TransformJobArn"].endswith(":transform-job/job-1")
    job = finish(jobs)
    assert job["TransformJobStatus"] == "Completed" and "FailureReason" not in job
    assert jobs.s3.get_object(Bucket="bucket", Key="out/a.jsonl.out")["Body"].read() == \
        b'{"length": 7}\n{"length": 8}\n'
    assert jobs.s3.get_object(Bucket="bucket", Key="out/b.jsonl.out")["Body"].read() == b'{"length": 9}\n'
    assert jobs.models["batch-model"].records == [b'{"x":1}', b'{"x":22}', b'{"x":333}']


def test_a_refused_line_leaves_its_file_without_output_and_fails_the_job_while_other_files_finish(jobs):
    jobs.s3.put_object(Bucket="bucket", Key="in/a.jsonl", Body=b'{"ok":1}\n{"refuse":1}\n')
    jobs.s3.put_object(Bucket="bucket", Key="in/b.jsonl", Body=b'{"ok":2}\n')
    create(jobs)
    job = finish(jobs)
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: 1 input file(s) failed; first: in/a.jsonl: the model "
                                           "answered 400")
    keys = [o["Key"] for o in jobs.s3.list_objects_v2(Bucket="bucket", Prefix="out/")["Contents"]]
    assert keys == ["out/b.jsonl.out"]


def test_what_the_stand_in_does_not_run_is_refused_not_ignored(jobs):
    with pytest.raises(TransformError) as error:
        create(jobs, BatchStrategy="MultiRecord",
               TransformOutput={"S3OutputPath": "s3://bucket/out", "AssembleWith": "None"})
    assert error.value.code == "ValidationException"
    assert "BatchStrategy 'MultiRecord'" in error.value.message and "AssembleWith 'None'" in error.value.message
    with pytest.raises(TransformError, match='Could not find model "other"'):
        create(jobs, ModelName="other")
    create(jobs)
    with pytest.raises(TransformError) as duplicate:
        create(jobs)
    assert duplicate.value.code == "ResourceInUse"
    with pytest.raises(TransformError, match="Could not find job"):
        jobs.handle("DescribeTransformJob", {"TransformJobName": "nope"})
    with pytest.raises(TransformError) as unknown:
        jobs.handle("CreateEndpoint", {})
    assert unknown.value.code == "UnknownOperationException"
