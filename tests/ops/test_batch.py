"""make batch (ops/batch.py) on the AWS path: S3 in moto, SageMaker through botocore's Stubber, no network.

Local mode's end-to-end run of the same command is in tests/local/test_local_batch.py."""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from model_api import aws
from moto import mock_aws
from PIL import Image

from deployment.settings import load_settings
from ops import batch, cost, destroy

BUCKET = "deploy-bucket"
PREFIX = "sagemakermodelapi-stable-diffusion-batch"
NOW = datetime(2026, 11, 24, 18, 0, 0, tzinfo=timezone.utc)
JOB = f"{PREFIX}-20261124t180000-abc123"
FOLDER = f"batch/stable-diffusion/{JOB}/"
SD = ["stable-diffusion.batch=true"]


def png(color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_answer(count: int = 1) -> bytes:
    """Our inference code's JSON answer (Accept application/json): base64 PNGs."""
    return json.dumps({"generated_images": [base64.b64encode(png()).decode() for _ in range(count)],
                       "prompt": "p"}).encode()


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def s3():
    with mock_aws():
        client = aws.s3_client({"AWS_REGION": "us-east-1"})  # what aws_target builds: SigV4 URLs
        client.create_bucket(Bucket=BUCKET)
        yield client


def target(s3, model_name="BatchModel-abc", prefix=PREFIX, kms=None):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    return batch.Target(BUCKET, model_name, prefix, sagemaker, s3, aws.S3ImageStore(s3, BUCKET), kms)


def describe(status, reason=None):
    response = {"TransformJobName": JOB, "TransformJobArn": f"arn:aws:sagemaker:us-east-1:1:transform-job/{JOB}",
                "ModelName": "BatchModel-abc", "TransformJobStatus": status,
                "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/i"}}},
                "TransformResources": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
                "CreationTime": NOW}
    if reason:
        response["FailureReason"] = reason
    return response


def run(tmp_path, lines: list[str], the_target, *, settings=SD, outputs=None, before_end=None, **kwargs):
    """ops.batch.run on an input file; SageMaker stubbed (create, InProgress, then the end state); `outputs` (part
    index -> bytes) are written as SageMaker would before the job ends."""
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    stub = Stubber(the_target.sagemaker)
    stub.add_response("create_transform_job", {"TransformJobArn": "arn:x"}, {
        "TransformJobName": JOB, "ModelName": the_target.model_name, "MaxConcurrentTransforms": 1,
        "MaxPayloadInMB": 1, "BatchStrategy": "SingleRecord", "ModelClientConfig": ANY,
        "TransformInput": ANY, "TransformOutput": ANY, "TransformResources": ANY})
    stub.add_response("describe_transform_job", describe("InProgress"), {"TransformJobName": JOB})
    end = before_end or describe("Completed")
    stub.add_response("describe_transform_job", end, {"TransformJobName": JOB})
    out = io.StringIO()
    clock = FakeClock()

    def sleep(seconds):
        clock.sleep(seconds)
        for index, body in (outputs or {}).items():  # SageMaker writes while the job runs
            the_target.s3.put_object(Bucket=BUCKET, Key=f"{FOLDER}output/part-{index:05d}.jsonl.out", Body=body)

    with stub:
        code = batch.run(load_settings(settings), kwargs.pop("model", "stable-diffusion"), path,
                         lambda model: the_target, out=out, clock=clock, sleep=sleep, now=lambda: NOW,
                         token=lambda: "abc123", **kwargs)
        stub.assert_no_pending_responses()
    manifest = tmp_path / "in.jsonl.manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()] if manifest.exists() else []
    return code, out.getvalue(), entries


def test_every_bad_line_is_named_and_nothing_is_uploaded(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n\n{"prompt": ""}\r\nnot json\n{"prompt": "a", "prompt": "b"}\n'
                     b'["prompt"]\n{"prompt": "x", "width": 4096}\n{"prompt": "\xff"}\n')
    out = io.StringIO()
    reached = []
    code = batch.run(load_settings(SD), "stable-diffusion", path, lambda model: reached.append(model), out=out)
    assert code == 2 and reached == []  # no target: no client made, nothing uploaded, no job
    text = out.getvalue()
    assert "nothing was uploaded" in text
    for expected in ("line 2: empty line", "line 3: prompt must not be empty", "line 4: request body is not valid "
                     "JSON", 'line 5: request body is not valid JSON: the key "prompt" appears twice in one object',
                     "line 6:", "line 7: width must be at most 768", "line 8: request body is not valid UTF-8"):
        assert expected in text, expected
    assert "line 1:" not in text
    assert not (tmp_path / "in.jsonl.manifest.jsonl").exists()


def test_a_long_list_of_problems_is_cut_with_a_count():
    report = batch.problem_report([f"line {i}: bad" for i in range(1, 31)])
    assert report.count("\n  line") == 20 and report.endswith("... and 10 more")


def test_a_file_without_lines_is_refused_with_an_example():
    lines, problems = batch.read_lines(b"", batch.batch_action(load_settings(SD), load_settings(SD).catalog[0], None),
                                       None)
    assert lines == [] and "no lines" in problems[0] and '{"prompt"' in problems[0]


def test_an_image_job_stores_every_image_and_the_manifest_has_the_apis_answer_per_line(tmp_path, s3):
    the_target = target(s3)
    code, out, entries = run(tmp_path, ['{"prompt": "a red apple", "seed": 3, "num_images": 2}',
                                        '{"prompt": "a pear", "seed": 4}'], the_target,
                             outputs={0: image_answer(2) + b"\n" + image_answer(1) + b"\n"})
    assert code == 0, out
    assert [e["line"] for e in entries] == [1, 2]
    first, second = entries[0]["result"], entries[1]["result"]
    assert (first["prompt"], first["seed"], len(first["images"])) == ("a red apple", 3, 2)
    assert (second["prompt"], second["seed"], len(second["images"])) == ("a pear", 4, 1)
    keys = [image["key"] for e in entries for image in e["result"]["images"]]
    assert keys == [f"images/2026/11/24/{JOB}-000001-0.png", f"images/2026/11/24/{JOB}-000001-1.png",
                    f"images/2026/11/24/{JOB}-000002-0.png"]
    for key in keys:
        obj = s3.get_object(Bucket=BUCKET, Key=key)
        assert obj["Body"].read() == png() and obj["ContentType"] == "image/png"
    assert all("X-Amz-Signature=" in image["url"] and image["expires_at"] for image in first["images"])
    # What SageMaker got: the model requests the API would send, one per line, JSON answers for every line.
    uploaded = s3.get_object(Bucket=BUCKET, Key=f"{FOLDER}input/part-00000.jsonl")["Body"].read().splitlines()
    requests = [json.loads(line) for line in uploaded]
    assert [r["inputs"] for r in requests] == ["a red apple", "a pear"]
    assert requests[0]["parameters"]["num_images_per_prompt"] == 2 and requests[1]["parameters"]["seed"] == 4
    assert f"batch: job {JOB}: 2 lines in 1 files on 1 x ml.g5.xlarge" in out
    assert "Completed: 2 of 2 lines have a result, 0 an error" in out


def test_the_job_request_is_one_line_per_call_json_in_and_out_and_bounded_by_the_batch_timeout(s3):
    settings = load_settings(SD + ["stable-diffusion.batch_timeout_seconds=1500"])
    the_target = target(s3, kms="arn:aws:kms:us-east-1:1:key/k")
    request = batch.transform_request(the_target, JOB, FOLDER, "ml.g5.2xlarge", 3,
                                      settings.catalog[0].batch_timeout_seconds, 2_500_000)
    assert request == {
        "TransformJobName": JOB, "ModelName": "BatchModel-abc", "MaxConcurrentTransforms": 1, "MaxPayloadInMB": 3,
        "BatchStrategy": "SingleRecord",
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": 1500, "InvocationsMaxRetries": 0},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{BUCKET}/{FOLDER}input/"}},
                           "ContentType": "application/json", "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/{FOLDER}output/", "Accept": "application/json",
                            "AssembleWith": "Line", "KmsKeyId": "arn:aws:kms:us-east-1:1:key/k"},
        "TransformResources": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 3}}
    assert "KmsKeyId" not in batch.transform_request(target(s3), JOB, FOLDER, "ml.g5.xlarge", 1, 600, 10)[
        "TransformOutput"]


def test_a_failed_file_loses_only_its_lines_and_says_why(tmp_path, s3):
    reason = "ClientError: See job logs for more information"
    code, out, entries = run(tmp_path, ['{"prompt": "one"}', '{"prompt": "two"}', '{"prompt": "three"}'],
                             target(s3), outputs={1: image_answer() + b"\n"}, lines_per_file=2,
                             before_end=describe("Failed", reason))
    assert code == 1
    assert [e["line"] for e in entries] == [1, 2, 3]
    for entry in entries[:2]:
        assert entry["error"]["code"] == "batch_file_failed"
        assert entry["error"]["message"] == f"SageMaker produced no output for the file with lines 1-2: {reason}"
    assert entries[2]["result"]["prompt"] == "three"
    assert "Failed: 1 of 3 lines have a result, 2 an error" in out
    # Two input files of at most two lines each.
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{FOLDER}input/")["Contents"]
    assert [o["Key"].rsplit("/", 1)[1] for o in listed] == ["part-00000.jsonl", "part-00001.jsonl"]


def test_an_output_that_does_not_match_its_input_is_every_lines_error_never_a_shifted_result(tmp_path, s3):
    code, _, entries = run(tmp_path, ['{"prompt": "one"}', '{"prompt": "two"}'], target(s3),
                           outputs={0: image_answer() + b"\n"})
    assert code == 1
    assert [e["error"]["code"] for e in entries] == ["bad_model_response"] * 2
    assert "has 1 lines for 2 inputs" in entries[0]["error"]["message"]


def test_a_bad_answer_for_one_line_is_that_lines_error_and_stores_nothing_for_it(tmp_path, s3):
    code, _, entries = run(tmp_path, ['{"prompt": "one"}', '{"prompt": "two"}'], target(s3),
                           outputs={0: b'{"generated_images": ["not base64!"]}\n' + image_answer() + b"\n"})
    assert code == 1
    assert entries[0]["error"]["code"] == "bad_model_response" and "result" in entries[1]
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="images/").get("Contents", [])]
    assert stored == [f"images/2026/11/24/{JOB}-000002-0.png"]


def test_a_text_job_answers_as_the_api_does(tmp_path, s3):
    settings = ["models=gpt2-cpu", "gpt2-cpu.batch=true"]
    global JOB, FOLDER
    saved = JOB, FOLDER
    JOB = "sagemakermodelapi-gpt2-cpu-batch-20261124t180000-abc123"
    FOLDER = f"batch/gpt2-cpu/{JOB}/"
    try:
        code, out, entries = run(tmp_path, ['{"inputs": "Hello"}', '{"inputs": "Hi", "parameters": '
                                                                   '{"max_new_tokens": 4}}'],
                                 target(s3, prefix="sagemakermodelapi-gpt2-cpu-batch"), settings=settings,
                                 model="gpt2-cpu",
                                 outputs={0: b'[{"generated_text": " world"}]\n[{"generated_text": " there"}]\n'})
        requests = [json.loads(line) for line in s3.get_object(
            Bucket=BUCKET, Key=f"{FOLDER}input/part-00000.jsonl")["Body"].read().splitlines()]
    finally:
        JOB, FOLDER = saved
    assert code == 0
    assert entries == [{"line": 1, "result": {"generated_text": " world"}},
                       {"line": 2, "result": {"generated_text": " there"}}]
    assert requests[1] == {"inputs": "Hi", "parameters": {"max_new_tokens": 4, "return_full_text": False}}
    assert "model work" not in out  # no per-line time is documented for text


def test_the_status_line_tells_the_state_and_time_and_for_images_the_model_work(tmp_path, s3):
    _, out, _ = run(tmp_path, ['{"prompt": "one", "steps": 30}'], target(s3), outputs={0: image_answer() + b"\n"},
                    poll_seconds=20)
    lines = [line for line in out.splitlines() if line.startswith(JOB)]
    # 1 + 1 image x (30 + 2 decode) steps x 0.09 s (g5) = 3.9 s of model work.
    assert lines == [f"{JOB}: InProgress, 0m00s so far; model work ≈ 0m03s once instances start and load the model "
                     "first (minutes)",
                     f"{JOB}: Completed, 0m20s so far; model work ≈ 0m03s once instances start and load the model "
                     "first (minutes)"]


def test_a_log_gets_a_new_line_only_when_the_state_changes_or_a_minute_passes():
    out = io.StringIO()
    status = batch.StatusLine(out)
    for elapsed, state in ((0, "InProgress"), (15, "InProgress"), (59, "InProgress"), (60, "InProgress"),
                           (75, "Completed")):
        status.show(state, f"{state} {elapsed}", elapsed)
    assert out.getvalue().splitlines() == ["InProgress 0", "InProgress 60", "Completed 75"]


def test_models_without_batch_and_bad_options_are_refused_before_anything_is_read(tmp_path):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(batch.BatchError, match=r"takes no batch jobs: deploy .* -c stable-diffusion.batch=true"):
        batch.run(load_settings([]), "stable-diffusion", missing, None)
    with pytest.raises(batch.BatchError, match="no model 'nope' in these settings; models: stable-diffusion"):
        batch.run(load_settings(SD), "nope", missing, None)
    with pytest.raises(batch.BatchError) as error:
        batch.run(load_settings(SD), "stable-diffusion", missing, None, instance_type="g5.xlarge",
                  instance_count=0, lines_per_file=0)
    assert all(word in str(error.value) for word in ("--instance-type", "--instance-count", "--lines-per-file"))
    with pytest.raises(batch.BatchError, match="cannot read"):
        batch.run(load_settings(SD), "stable-diffusion", missing, None)
    with pytest.raises(batch.BatchError, match="has no action 'generate'"):
        batch.run(load_settings(SD), "stable-diffusion", missing, None, action_name="generate")


def test_images_are_checked_against_the_batch_timeout_on_the_jobs_instances(tmp_path):
    heavy = '{"prompt": "x", "width": 768, "height": 768, "steps": 50, "num_images": 4}'
    settings = load_settings(SD)
    model = settings.catalog[0]
    action = batch.batch_action(settings, model, None)
    # 4 x 2.25 x 52 x 0.09 s = 42 s: refused by the API's 22 s, fine for a 600 s batch line.
    lines, problems = batch.read_lines(heavy.encode(), action, batch.batch_config(settings, model, "ml.g5.xlarge"))
    assert problems == [] and len(lines) == 1
    cpu = batch.batch_config(settings, model, "ml.m5.large")  # 6 s a step on 2 vCPUs: hours
    _, problems = batch.read_lines(heavy.encode(), action, cpu)
    assert "on ml.m5.large" in problems[0] and "within 600 s" in problems[0]


class Session:
    """A boto3 session stand-in whose CloudFormation client is stubbed."""

    region_name = "us-east-1"

    def __init__(self, outputs):
        self.cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        stub = Stubber(self.cloudformation)
        if outputs is None:
            stub.add_client_error("describe_stacks", "ValidationError", "Stack with id SageMakerModelApi does not exist")
        else:
            stub.add_response("describe_stacks", {"Stacks": [{
                "StackName": "SageMakerModelApi", "CreationTime": NOW, "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]})
        stub.activate()

    def client(self, name, **kwargs):
        return self.cloudformation if name == "cloudformation" else boto3.client(name, region_name="us-east-1")


def test_the_aws_target_comes_from_the_stack_outputs_or_says_what_to_deploy():
    settings = load_settings(SD)
    model = settings.catalog[0]
    with pytest.raises(batch.BatchError, match="stack SageMakerModelApi not found in us-east-1"):
        batch.aws_target(settings, model, Session(None))
    with pytest.raises(batch.BatchError, match="no batch model for stable-diffusion: deploy with "
                                               "-c stable-diffusion.batch=true"):
        batch.aws_target(settings, model, Session({"BucketName": "b"}))
    found = batch.aws_target(settings, model, Session({"BucketName": "b", "StableDiffusionBatchModelName": "M-1",
                                                       "StableDiffusionBatchJobPrefix": PREFIX}))
    assert (found.bucket, found.model_name, found.job_prefix) == ("b", "M-1", PREFIX)


def test_local_mode_not_running_is_said_plainly(tmp_path):
    settings = load_settings(SD)
    with pytest.raises(batch.BatchError, match="local mode is not running"):
        batch.local_target(settings, settings.catalog[0], tmp_path / "ready.json")
    (tmp_path / "ready.json").write_text(json.dumps({"batch": {}}))
    with pytest.raises(batch.BatchError, match="serves no batch model for stable-diffusion"):
        batch.local_target(settings, settings.catalog[0], tmp_path / "ready.json")


def test_cost_shows_a_batch_row_billed_only_while_a_job_runs():
    settings = load_settings(["models=stable-diffusion,gpt2-cpu", "stable-diffusion.batch=true", "gpt2-cpu.batch=true",
                              "gpt2-cpu.hosting=serverless"])
    rows = {r.model: r for r in cost.rows(settings, "us-east-1")}
    sd, gpt2 = rows["stable-diffusion batch"], rows["gpt2-cpu batch"]
    assert (sd.hosting, sd.instance, sd.idle_monthly) == ("batch", "ml.g5.xlarge", 0.0)
    assert sd.per_1000_images == pytest.approx(rows["stable-diffusion"].per_1000_images)
    assert (gpt2.instance, gpt2.per_1000_images) == ("ml.m5.xlarge", None)  # serverless: a CPU instance for jobs
    text = cost.table(list(rows.values()), "us-east-1")
    assert "each 10 minutes of it: $0.23" in text and "Idle total: $1,028/month" in text
    assert "stable-diffusion batch" not in {r.model for r in cost.rows(load_settings([]), "us-east-1")}


def test_destroy_names_the_transform_log_group_it_cannot_remove():
    notes = destroy.kept(load_settings(SD), {"StableDiffusionBatchModelName": "M-1"})
    assert any("/aws/sagemaker/TransformJobs" in note and "--retention-in-days 30" in note for note in notes)
    assert destroy.kept(load_settings([]), {"BucketName": "b"}) == []


def test_main_answers_settings_and_batch_problems_with_exit_2(tmp_path, capsys):
    assert batch.main(["stable-diffusion", str(tmp_path / "x.jsonl")]) == 2
    assert "takes no batch jobs" in capsys.readouterr().err
    assert batch.main(["stable-diffusion", "x.jsonl", "-c", "batch_timeout_seconds=0"]) == 2
    assert "batch_timeout_seconds" in capsys.readouterr().err


def test_the_default_ready_file_is_where_local_mode_writes_it():
    assert batch.DEFAULT_READY_FILE == Path(__file__).resolve().parents[2] / ".local" / "ready.json"
