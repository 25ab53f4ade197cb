"""Local SageMaker batch transform: CreateTransformJob, DescribeTransformJob and StopTransformJob, as the SageMaker
API's JSON protocol carries them (POST / with X-Amz-Target: SageMaker.<Operation>), so `make batch LOCAL=1` runs the
very boto3 calls it makes on AWS with only AWS_ENDPOINT_URL_SAGEMAKER set.

A job runs in the background, one at a time, the way the Developer Guide describes batch transform ("Use Batch
Transform"): every object under the input prefix is a file; with SplitType Line each line is one request to the
model (SingleRecord); the answers of a file go, one per line (AssembleWith Line), to <output path>/<file>.out in
the input's order. A file with a line the model refuses gets no output and the job ends Failed, while the other
files still get theirs. The failure wording is local mode's own (SageMaker's points to the job's logs).
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from local.toolkit import ModelError

LOCAL_ACCOUNT = "000000000000"
REGION = "us-east-1"
# What this stand-in runs: the parameters ops/batch.py sends. Anything else is refused, not silently ignored.
SUPPORTED = {"SplitType": ("Line",), "BatchStrategy": ("SingleRecord",), "AssembleWith": ("Line",),
             "S3DataType": ("S3Prefix",), "CompressionType": ("None",)}
DEFAULTS = {"CompressionType": "None"}  # SageMaker's default where a field is left out


class TransformError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class LocalTransformJobs:
    """Transform jobs on the models of local mode. models: batch model name -> a served model (invoke(body,
    content_type, accept)); s3: a client of the local S3."""

    def __init__(self):
        self.models: dict = {}
        self.s3 = None
        self.jobs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="transform")

    def handle(self, operation: str, request: dict) -> dict:
        """One API call -> its response, or TransformError (answered 400 with the error's code)."""
        if operation == "CreateTransformJob":
            return self.create(request)
        if operation in ("DescribeTransformJob", "StopTransformJob"):
            name = request.get("TransformJobName", "")
            with self._lock:
                job = self.jobs.get(name)
                if job is None:
                    raise TransformError("ValidationException", f"Could not find job to update with name {name}")
                if operation == "StopTransformJob":
                    job["stop"] = True
                    return {}
                return {k: v for k, v in job.items() if k != "stop"}
        raise TransformError("UnknownOperationException", f"local mode does not serve SageMaker {operation}")

    def create(self, request: dict) -> dict:
        name = request.get("TransformJobName") or ""
        model = request.get("ModelName") or ""
        source = request.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {})
        output = request.get("TransformOutput", {})
        given = {**source, **output, **request.get("TransformInput", {}), **request}
        problems = [f"{field} {given.get(field, DEFAULTS.get(field))!r} is not run here (local mode runs "
                    f"{', '.join(allowed)})" for field, allowed in SUPPORTED.items()
                    if given.get(field, DEFAULTS.get(field)) not in allowed]
        if not source.get("S3Uri", "").startswith("s3://") or not output.get("S3OutputPath", "").startswith("s3://"):
            problems.append("TransformInput S3Uri and TransformOutput S3OutputPath must be s3:// URIs")
        if problems:
            raise TransformError("ValidationException", "; ".join(problems))
        if model not in self.models:
            raise TransformError("ValidationException", f"Could not find model \"{model}\".")
        arn = f"arn:aws:sagemaker:{REGION}:{LOCAL_ACCOUNT}:transform-job/{name.lower()}"
        with self._lock:
            if name in self.jobs:
                raise TransformError("ResourceInUse", f"Job name must be unique within an AWS account and region, "
                                                      f"and a job with this name already exists ({arn})")
            self.jobs[name] = {
                "TransformJobName": name, "TransformJobArn": arn, "ModelName": model,
                "TransformJobStatus": "InProgress", "CreationTime": time.time(),
                **{k: request[k] for k in ("TransformInput", "TransformOutput", "TransformResources",
                                           "BatchStrategy", "MaxConcurrentTransforms", "MaxPayloadInMB",
                                           "ModelClientConfig") if k in request},
            }
        self._worker.submit(self._run, name)
        return {"TransformJobArn": arn}

    def _run(self, name: str) -> None:
        job = self.jobs[name]
        job["TransformStartTime"] = time.time()
        failures: list[str] = []
        try:
            model = self.models[job["ModelName"]]
            bucket, prefix = _split(job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
            out_bucket, out_prefix = _split(job["TransformOutput"]["S3OutputPath"])
            out_prefix = out_prefix if not out_prefix or out_prefix.endswith("/") else out_prefix + "/"
            content_type = job["TransformInput"].get("ContentType", "application/json")
            accept = job["TransformOutput"].get("Accept", "application/json")
            for key in self._keys(bucket, prefix):
                if job.get("stop"):
                    break
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                answers = []
                try:
                    for record in (r for r in body.split(b"\n") if r.strip()):
                        answer, _ = model.invoke(record, content_type, accept)
                        answers.append(answer.rstrip(b"\n") + b"\n")
                except ModelError as error:
                    failures.append(f"{key}: the model answered {error.status}: {error.message[:200]}")
                    continue
                relative = key[len(prefix):].lstrip("/") if prefix.endswith("/") or not prefix else \
                    key.rsplit("/", 1)[-1]
                self.s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{relative}.out", Body=b"".join(answers))
        except Exception as error:  # the stand-in's own fault ends the job, as an internal error would on AWS
            print(f"local: transform job {name} failed: {error!r}", file=sys.stderr, flush=True)
            failures.append(f"the job could not run: {type(error).__name__}")
        with self._lock:
            job["TransformEndTime"] = time.time()
            if job.get("stop"):
                job["TransformJobStatus"] = "Stopped"
            elif failures:
                job["TransformJobStatus"] = "Failed"
                job["FailureReason"] = f"ClientError: {len(failures)} input file(s) failed; first: {failures[0]}"
            else:
                job["TransformJobStatus"] = "Completed"

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
        return sorted(keys)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
