"""`make batch MODEL=<name> INPUT=<file.jsonl>`: run a JSON Lines file through a model with SageMaker Batch Transform.

    python -m ops.batch MODEL INPUT [--local] [--instance-type T] [--instance-count N] [--lines-per-file N]
                        [--output MANIFEST] [--action NAME] [-c NAME=VALUE ...]

1. Every line is a request body of the model's route (POST /models/<model>), validated by the same code and limits
   as the API; bad lines are listed with their line numbers and nothing is uploaded.
2. The model requests those lines make go to the deployment's bucket, batch/<model>/<job>/input/, in files of
   --lines-per-file lines: SageMaker writes no output for a file in which one line fails (so a failure costs at
   most that many lines), and spreads files, not lines, over instances.
3. A transform job runs on the model's batch model (stack outputs <Model>BatchModelName and <Model>BatchJobPrefix;
   deploy with -c <model>.batch=true), one line per request, each bounded by the model's batch_timeout_seconds.
   A status line shows the job's state, the time so far and, for images, an estimate of the model's work.
4. The manifest (INPUT.manifest.jsonl, or --output) has one line per input line, in order: {"line": n, "result":
   ...} with what the API would answer (images: each stored under images/ with its key and a presigned URL), or
   {"line": n, "error": {"code", "message"}}. Exit 0 when every line has a result, 1 when any has an error.

--local (make batch LOCAL=1) runs the same against local mode (`make local`): its ready file (.local/ready.json) gives the local S3 and
the local SageMaker stand-in, which runs transform jobs itself (local/transform.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from model_api import calls as _calls
from model_api import errors as _errors
from model_api import kinds as _kinds
from model_api.kinds import text_to_image as _images

from deployment.hosting import BATCH_PREFIX
from deployment.model_catalog import instance_family, pascal, step_seconds
from deployment.settings import Settings, SettingsError, load_settings
from ops import cdk
from ops.cdk import stack_outputs

JSON = _calls.JSON
DEFAULT_LINES_PER_FILE = 50
DEFAULT_READY_FILE = Path(__file__).resolve().parent.parent / ".local" / "ready.json"
# Instance types batch transform gets when the model's own is not an instance (serverless hosting).
DEFAULT_CPU_BATCH_INSTANCE = "ml.m5.xlarge"
# What a transform job takes before its first line: instances start and the container loads the model. Minutes, as
# for an endpoint; the job's own log stream shows the real figure.
START_NOTE = "instances start and load the model first (minutes)"
FINISHED = ("Completed", "Failed", "Stopped")


class BatchError(Exception):
    """Something the user must fix before a job can run (exit 2), said plainly."""


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line number in the input file
    call: object  # model_api.calls.ModelCall: the model request the API would send for this line
    prompt: Optional[str] = None  # images: the prompt, echoed in the result as the API does


@dataclass(frozen=True)
class Target:
    """Where a job runs: the deployment's (or local mode's) bucket and batch model, and clients to reach them."""

    bucket: str
    model_name: str  # the SageMaker model of the batch jobs
    job_prefix: str  # job names start with it
    sagemaker: object
    s3: object
    store: object  # model_api.aws.S3ImageStore: stores images and signs their URLs
    kms_key_arn: Optional[str] = None


# ------------------------------------------------------------------------------------------------------ validate


def batch_action(settings: Settings, model, name: Optional[str]):
    kind = _kinds.KINDS[model.kind]
    if name is None:
        return kind.actions[0]
    names = [a.name for a in kind.actions]
    if name not in names:
        raise BatchError(f"batch: {model.name} ({model.kind}) has no action {name!r}; one of {', '.join(names)}")
    return kind.action(name)


def batch_config(settings: Settings, model, instance_type: str):
    """The pipeline config the model's Lambda reads, bounded for batch: a line may take the model's
    batch_timeout_seconds on the job's instance type (not the 29 s of an API call)."""
    config = _kinds.KINDS[model.kind].config_from_env(settings.function_environment(model))
    if isinstance(config, _images.ImageConfig):
        config = dataclasses.replace(config, time_budget_seconds=float(model.batch_timeout_seconds),
                                     step_seconds=model.seconds_per_step or step_seconds(instance_type),
                                     instance_type=instance_type)
    return config


def read_lines(data: bytes, action, config) -> tuple[list[Line], list[str]]:
    """Each line of a JSON Lines file checked as a request body of `action`: (lines, problems). A problem names its
    line; a final newline is fine, a blank line is not (it would be a request with no body)."""
    problems: list[str] = []
    lines: list[Line] = []
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    if not raw_lines:
        return [], ["the file has no lines: put one JSON request body per line, e.g. " + action.example]
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            problems.append(f"line {number}: empty line")
            continue
        event = {"httpMethod": "POST", "path": f"/{action.name}", "body": raw, "isBase64Encoded": False,
                 "headers": {"Content-Type": JSON}}
        try:
            call = action.prepare(event, config)
        except _errors.ApiError as error:
            problems.append(f"line {number}: {error.message}")
            continue
        if call.content_type != JSON:
            problems.append(f"line {number}: the model takes {call.content_type}, which batch jobs do not send")
            continue
        # One Accept for every line of a job: JSON (images as base64 PNGs in it, one line per answer).
        prompt = json.loads(raw).get("prompt") if action.finish is None else None
        lines.append(Line(number, dataclasses.replace(call, accept=JSON), prompt))
    return lines, problems


def problem_report(problems: Sequence[str], shown: int = 20) -> str:
    head = list(problems[:shown])
    more = len(problems) - len(head)
    return "\n".join(["batch: nothing was uploaded; fix these lines:", *(f"  {p}" for p in head),
                      *([f"  ... and {more} more"] if more else [])])


# ------------------------------------------------------------------------------------------------------ the job


def job_name(prefix: str, now: datetime, token: str) -> str:
    """<prefix>-<yyyymmddThhmmss>-<6 hex>: sortable by start, unique, within SageMaker's 63 characters."""
    return f"{prefix}-{now:%Y%m%dt%H%M%S}-{token}"


def parts(lines: Sequence[Line], lines_per_file: int) -> list[list[Line]]:
    return [list(lines[i:i + lines_per_file]) for i in range(0, len(lines), lines_per_file)]


def part_key(folder: str, index: int) -> str:
    return f"{folder}part-{index:05d}.jsonl"


def job_folder(model: str, name: str) -> str:
    return f"{BATCH_PREFIX}{model}/{name}/"


def upload(target: Target, folder: str, files: list[list[Line]]) -> None:
    for index, part in enumerate(files):
        body = b"".join(line.call.body + b"\n" for line in part)
        target.s3.put_object(Bucket=target.bucket, Key=part_key(folder + "input/", index), Body=body,
                             ContentType="application/jsonlines")


def transform_request(target: Target, name: str, folder: str, instance_type: str, instance_count: int,
                      timeout_seconds: int, largest_line: int) -> dict:
    """CreateTransformJob's parameters: one line per request (SplitType Line, SingleRecord), one request at a time
    per instance (the model holds its accelerator per request), answers one per line (AssembleWith Line)."""
    output = {"S3OutputPath": f"s3://{target.bucket}/{folder}output/", "Accept": JSON, "AssembleWith": "Line"}
    if target.kms_key_arn:
        output["KmsKeyId"] = target.kms_key_arn
    return {
        "TransformJobName": name,
        "ModelName": target.model_name,
        "MaxConcurrentTransforms": 1,
        # At least one record: the API's own body limits keep lines far below a megabyte.
        "MaxPayloadInMB": max(1, math.ceil(largest_line / 1_000_000)),
        "BatchStrategy": "SingleRecord",
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": timeout_seconds, "InvocationsMaxRetries": 0},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{target.bucket}/{folder}input/"}},
                           "ContentType": JSON, "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": output,
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
    }


def model_seconds(lines: Sequence[Line], step: Optional[float]) -> Optional[float]:
    """Seconds of model work the lines of an image job take (the documented per-step time), None when unknown."""
    if step is None:
        return None
    total = 0.0
    for line in lines:
        parameters = json.loads(line.call.body).get("parameters", {})
        total += _images.FIXED_SECONDS + parameters.get("num_images_per_prompt", 1) * (
            parameters.get("width", 512) * parameters.get("height", 512) / (512 * 512)) * step * (
            parameters.get("num_inference_steps", 30) + _images.DECODE_STEPS)
    return total


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


class StatusLine:
    """One line that updates in place on a terminal; elsewhere (a log, a CI run) a new line when the state changes
    or a minute passes."""

    def __init__(self, out: TextIO):
        self.out, self.tty = out, out.isatty()
        self._last: tuple[str, float] = ("", -math.inf)

    def show(self, status: str, text: str, elapsed: float) -> None:
        if self.tty:
            self.out.write("\r" + text.ljust(100)[:100])
        elif status != self._last[0] or elapsed - self._last[1] >= 60:
            self.out.write(text + "\n")
            self._last = (status, elapsed)
        else:
            return
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def wait(target: Target, name: str, work_seconds: Optional[float], instance_count: int, out: TextIO,
         poll_seconds: float = 15, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll DescribeTransformJob until the job ends; returns its last description."""
    started = clock()
    status = StatusLine(out)
    estimate = "" if work_seconds is None else \
        f"; model work ≈ {_duration(work_seconds / instance_count)} once {START_NOTE}"
    while True:
        job = target.sagemaker.describe_transform_job(TransformJobName=name)
        state = job["TransformJobStatus"]
        elapsed = clock() - started
        status.show(state, f"{name}: {state}, {_duration(elapsed)} so far{estimate}", elapsed)
        if state in FINISHED:
            status.done()
            return job
        sleep(poll_seconds)


# ------------------------------------------------------------------------------------------------------ results


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def results(target: Target, action, config, name: str, folder: str, files: list[list[Line]], job: dict,
            now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> list[dict]:
    """One manifest entry per input line, in input order: its result, or why there is none."""
    entries: list[dict] = []
    reason = job.get("FailureReason") or f"the job ended {job['TransformJobStatus']}"
    for index, part in enumerate(files):
        span = f"lines {part[0].number}-{part[-1].number}" if len(part) > 1 else f"line {part[0].number}"
        try:
            answer = target.s3.get_object(Bucket=target.bucket,
                                          Key=part_key(folder + "output/", index) + ".out")["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            # SageMaker writes no output for a file with a failed line (to keep lines in order).
            message = f"SageMaker produced no output for the file with {span}: {reason}"
            entries += [{"line": line.number, **_error("batch_file_failed", message)} for line in part]
            continue
        answers = answer.split(b"\n")
        if answers and answers[-1] == b"":
            answers.pop()
        if len(answers) != len(part):
            message = f"the output for {span} has {len(answers)} lines for {len(part)} inputs"
            entries += [{"line": line.number, **_error("bad_model_response", message)} for line in part]
            continue
        for line, body in zip(part, answers):
            try:
                entries.append({"line": line.number, "result": finish_line(target, action, config, name, line,
                                                                           body, now)})
            except _errors.ApiError as error:
                entries.append({"line": line.number, **_error(error.code, error.message)})
    return entries


def finish_line(target: Target, action, config, name: str, line: Line, body: bytes,
                now: Callable[[], datetime]) -> dict:
    """The API's answer for one line: the action's own, or for images each one stored and signed."""
    if action.finish is not None:
        return action.finish(body, line.call.meta, JSON)
    images, media_type = _images.decode_model_images(body, JSON, line.call.meta["num_images"])
    extension = "png" if media_type == _images.PNG else "jpg"
    day = now().strftime("%Y/%m/%d")
    keys = [f"{config.key_prefix}{day}/{name}-{line.number:06d}-{i}.{extension}" for i in range(len(images))]
    signed = [target.store.presign(key, config.url_ttl_seconds) for key in keys]
    target.store.put_all(list(zip(keys, images)), media_type)
    return {"images": _images.image_entries(keys, signed), "prompt": line.prompt, "seed": line.call.meta["seed"]}


# ------------------------------------------------------------------------------------------------------ targets


def aws_target(settings: Settings, model, session=None) -> Target:
    """The deployed stack's bucket and batch model, from its outputs, reached with the AWS CLI's credentials."""
    from botocore.config import Config

    session = session or cdk.session(settings.region)
    region = session.region_name
    if not region:
        raise BatchError("batch: no AWS region: set AWS_REGION (or -c region=...)")
    outputs = stack_outputs(session.client("cloudformation"), settings.stack_name)
    if outputs is None:
        raise BatchError(f"batch: stack {settings.stack_name} not found in {region} (or not readable with these "
                         "credentials); deploy it first with make deploy")
    keys = (f"{pascal(model.name)}BatchModelName", f"{pascal(model.name)}BatchJobPrefix")
    if any(key not in outputs for key in keys) or "BucketName" not in outputs:
        raise BatchError(f"batch: the deployed stack has no batch model for {model.name}: deploy with "
                         f"-c {model.name}.batch=true first")
    from model_api import aws
    s3 = aws.s3_client({"AWS_REGION": region})
    return Target(outputs["BucketName"], outputs[keys[0]], outputs[keys[1]],
                  session.client("sagemaker", config=Config(retries={"mode": "standard", "max_attempts": 5},
                                                            connect_timeout=5, read_timeout=30)),
                  s3, aws.S3ImageStore(s3, outputs["BucketName"]), settings.kms_key_arn)


def local_target(settings: Settings, model, ready_file: Path) -> Target:
    """Local mode's bucket and SageMaker stand-in, from the ready file it writes while serving."""
    try:
        ready = json.loads(ready_file.read_text())
    except (OSError, ValueError):
        raise BatchError(f"batch: local mode is not running (no {ready_file}); start it with make local "
                         "(with the same -c settings)") from None
    batch = ready.get("batch", {}).get(model.name)
    if batch is None:
        raise BatchError(f"batch: local mode serves no batch model for {model.name}: start it with "
                         f"-c {model.name}.batch=true")
    # Local mode's own credentials for this run (its stand-ins refuse any other): from the ready file, which only its
    # owner may read.
    env = {"AWS_ACCESS_KEY_ID": ready["credentials"]["access_key_id"],
           "AWS_SECRET_ACCESS_KEY": ready["credentials"]["secret_access_key"], "AWS_REGION": ready["region"], "AWS_DEFAULT_REGION": ready["region"], "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ENDPOINT_URL_S3": ready["s3_url"], "AWS_ENDPOINT_URL_STS": ready["s3_url"],
           "AWS_ENDPOINT_URL_SAGEMAKER": ready["endpoint_url"], "S3_ADDRESSING_STYLE": "path",
           "SIGNER_ROLE_ARN": ready["signer_role_arn"]}
    os.environ.update(env)  # this process talks to local mode only: its loopback servers and its credentials
    os.environ.pop("AWS_SESSION_TOKEN", None)  # never a real session's token beside them
    import boto3
    from model_api import aws
    s3 = aws.s3_client(env)
    return Target(ready["bucket"], batch["model_name"], batch["job_prefix"],
                  boto3.client("sagemaker", region_name=ready["region"]), s3,
                  aws.S3ImageStore(s3, ready["bucket"], signing=aws.url_signing(env, settings.url_ttl_seconds)))


# ------------------------------------------------------------------------------------------------------ command


def default_instance_type(model) -> str:
    """The model's own instance type, or a CPU one for a mode that runs on none (serverless)."""
    return model.instance_type if model.on_instances else DEFAULT_CPU_BATCH_INSTANCE


def run(settings: Settings, model_name: str, input_path: Path, target_of: Callable[[object], Target], *,
        action_name: Optional[str] = None, instance_type: Optional[str] = None, instance_count: int = 1,
        lines_per_file: int = DEFAULT_LINES_PER_FILE, manifest_path: Optional[Path] = None,
        out: TextIO = sys.stdout, poll_seconds: float = 15, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        token: Callable[[], str] = lambda: secrets.token_hex(3)) -> int:
    names = [m.name for m in settings.catalog]
    if model_name not in names:
        raise BatchError(f"batch: no model {model_name!r} in these settings; models: {', '.join(names)}")
    model = settings.model(model_name)
    if not model.batch:
        raise BatchError(f"batch: {model_name} takes no batch jobs: deploy (or start local mode) with "
                         f"-c {model_name}.batch=true")
    instance_type = instance_type or default_instance_type(model)
    problems = []
    if not instance_family(instance_type):
        problems.append(f"--instance-type {instance_type!r} is not a SageMaker instance type such as ml.g5.xlarge")
    if not 1 <= instance_count <= 100:
        problems.append(f"--instance-count must be from 1 to 100 (got {instance_count})")
    if not 1 <= lines_per_file <= 10000:
        problems.append(f"--lines-per-file must be from 1 to 10000 (got {lines_per_file})")
    if problems:
        raise BatchError("batch: " + "; ".join(problems))
    action = batch_action(settings, model, action_name)
    config = batch_config(settings, model, instance_type)
    try:
        data = input_path.read_bytes()
    except OSError as error:
        raise BatchError(f"batch: cannot read {input_path}: {error.strerror or error}") from None
    lines, problems = read_lines(data, action, config)
    if problems:
        print(problem_report(problems), file=out)
        return 2
    target = target_of(model)
    name = job_name(target.job_prefix, now(), token())
    folder = job_folder(model.name, name)
    files = parts(lines, lines_per_file)
    upload(target, folder, files)
    request = transform_request(target, name, folder, instance_type, instance_count, model.batch_timeout_seconds,
                                max(len(line.call.body) for line in lines))
    target.sagemaker.create_transform_job(**request)
    print(f"batch: job {name}: {len(lines)} lines in {len(files)} files on {instance_count} x {instance_type} "
          f"(s3://{target.bucket}/{folder})", file=out, flush=True)
    work = model_seconds(lines, config.step_seconds if isinstance(config, _images.ImageConfig) else None)
    job = wait(target, name, work, instance_count, out, poll_seconds, clock, sleep)
    entries = results(target, action, config, name, folder, files, job, now)
    manifest_path = manifest_path or input_path.with_name(input_path.name + ".manifest.jsonl")
    manifest_path.write_text("".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries))
    failed = sum(1 for entry in entries if "error" in entry)
    print(f"batch: {job['TransformJobStatus']}: {len(entries) - failed} of {len(entries)} lines have a result, "
          f"{failed} an error; manifest {manifest_path}", file=out, flush=True)
    return 1 if failed else 0


def main(argv=None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model of the deployment (its name in the settings)")
    parser.add_argument("input", type=Path, help="JSON Lines: one request body of the model's route per line")
    parser.add_argument("--local", nargs="?", const=DEFAULT_READY_FILE, type=Path, metavar="READY_FILE",
                        help=f"run against local mode (default ready file {DEFAULT_READY_FILE})")
    parser.add_argument("--action", help="which of the model's actions each line asks for (default its main one)")
    parser.add_argument("--instance-type", help="instances of the job (default the model's instance type; "
                                                f"{DEFAULT_CPU_BATCH_INSTANCE} for a serverless model)")
    parser.add_argument("--instance-count", type=int, default=1, help="instances of the job (default 1)")
    parser.add_argument("--lines-per-file", type=int, default=DEFAULT_LINES_PER_FILE,
                        help=f"lines per input file (default {DEFAULT_LINES_PER_FILE}): a failed line loses its "
                             "file's results; files are what instances share")
    parser.add_argument("--output", type=Path, help="the manifest (default INPUT.manifest.jsonl)")
    parser.add_argument("--poll-seconds", type=float, default=15, help="seconds between status checks")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE",
                        help="the deployment's settings, as given to make deploy")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.context)
        return run(settings, args.model, args.input,
                   (lambda model: local_target(settings, model, args.local)) if args.local else
                   (lambda model: aws_target(settings, model)),
                   action_name=args.action, instance_type=args.instance_type, instance_count=args.instance_count,
                   lines_per_file=args.lines_per_file, manifest_path=args.output, out=out,
                   poll_seconds=args.poll_seconds)
    except (SettingsError, BatchError) as error:
        print(error, file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:  # AWS refused or was unreachable: say which call and why
        print(f"batch: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
