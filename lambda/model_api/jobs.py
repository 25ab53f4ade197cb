"""Async jobs: a request queued on a SageMaker Asynchronous Inference endpoint, and its state read back from S3.

Pure like the other pipelines: S3 and the endpoint are reached only through the JobStore and AsyncEndpoint passed in
(model_api.aws implements them with boto3; local mode runs the same code against its loopback stand-ins).

A job is a few objects, no database:
  jobs/<job_id>/input-<model>.json   the model request SageMaker reads (InputLocation)
  jobs/<job_id>/job.json             who asked what: model, action, where SageMaker will write the outcome
  <model output path>/<...>.out      SageMaker's: the model's answer, or under the failure path its error
  jobs/<job_id>/result.json          written on the first poll after the answer: the finished result (image keys,
                                     text), so later polls neither re-parse nor re-store anything
The job id is 128 random bits in hex: unguessable, and the only handle on a job. Nothing lists jobs.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping, Optional, Protocol

from model_api.errors import ApiError

JOB_ID = re.compile(r"[0-9a-f]{32}\Z")
JOBS_PATH = "/jobs"
JOB_PATH = "/jobs/{job_id}"
QUEUED, DONE, FAILED = "queued", "done", "failed"
# How the failure object of a job the model refused starts (our inference code's marker, model_api.aws).
INPUT_REFUSED = "invalid input: "
FAILURE_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class ModelCall:
    """One request to the model, ready to send, and what turning its answer into the API's result needs."""

    body: bytes
    content_type: str
    accept: str
    meta: dict = field(default_factory=dict)  # JSON-serializable: prompt, seed, count, protocol, ...


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    model: str
    action: str
    accept: str
    output: str  # S3 URI of the answer, as InvokeEndpointAsync returned it
    failure: str  # S3 URI of the error
    created_at: str  # ISO 8601 UTC
    request_id: str
    meta: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "JobRecord":
        return cls(**json.loads(data))


class JobStore(Protocol):
    def put_input(self, job_id: str, model: str, body: bytes, content_type: str) -> str:
        """Store the model request; return its S3 URI. Raises ApiError."""

    def delete_input(self, job_id: str, model: str) -> None:
        """Remove a stored request whose job never started (best effort)."""

    def put_json(self, job_id: str, name: str, data: bytes) -> None:
        """Store jobs/<job_id>/<name>. Raises ApiError."""

    def get_json(self, job_id: str, name: str) -> Optional[bytes]:
        """jobs/<job_id>/<name>, or None when it does not exist. Raises ApiError."""

    def read(self, uri: str) -> Optional[bytes]:
        """The object at an S3 URI, or None when it does not exist (yet). Raises ApiError."""


class AsyncEndpoint(Protocol):
    def invoke_async(self, input_uri: str, content_type: str, accept: str, job_id: str) -> tuple[str, str]:
        """Queue one request; return (output URI, failure URI). Raises ApiError."""


def new_job_id() -> str:
    return secrets.token_hex(16)


def status_url(event: Mapping, job_id: str) -> str:
    """The absolute URL of GET /jobs/<job_id> on the API that received `event` (its host and stage)."""
    context = event.get("requestContext") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    host = context.get("domainName") or headers.get("host") or "localhost"
    scheme = headers.get("x-forwarded-proto") or "https"
    stage = context.get("stage")
    prefix = f"/{stage}" if stage and (context.get("path") or "").startswith(f"/{stage}/") else ""
    return f"{scheme}://{host}{prefix}{JOBS_PATH}/{job_id}"


def submit(call: ModelCall, *, model: str, action: str, endpoint: AsyncEndpoint, store: JobStore, event: Mapping,
           request_id: str, job_id: Callable[[], str] = new_job_id,
           now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> dict:
    """Queue a validated model request as a job: the 202 body. Nothing is left behind if the endpoint refuses it."""
    identifier = job_id()
    input_uri = store.put_input(identifier, model, call.body, call.content_type)
    try:
        output, failure = endpoint.invoke_async(input_uri, call.content_type, call.accept, identifier)
    except ApiError:
        store.delete_input(identifier, model)
        raise
    record = JobRecord(identifier, model, action, call.accept, output, failure,
                       now().strftime("%Y-%m-%dT%H:%M:%SZ"), request_id, call.meta)
    store.put_json(identifier, "job.json", record.to_json())
    return {"job_id": identifier, "status": QUEUED, "status_url": status_url(event, identifier),
            "submitted_at": record.created_at, "request_id": request_id}


def job_id_from(event: Mapping) -> str:
    """The job id of GET /jobs/{job_id}; a malformed one is a job that does not exist (404)."""
    job_id = ((event.get("pathParameters") or {}).get("job_id") or "")
    if not JOB_ID.match(job_id):
        raise ApiError(404, "job_not_found", "no such job; job ids are the 32 hex characters POST returned")
    return job_id


def status(job_id: str, *, store: JobStore, finish: Callable[[JobRecord, bytes], dict],
           respond: Callable[[JobRecord, dict], dict], model: Optional[str] = None) -> dict:
    """A job's state: queued, failed (with the model's error) or done (with the same body the synchronous route
    answers, made by respond() from the stored result). finish(record, answer) turns the model's answer into that
    stored result once; an answer the API cannot use fails the job (502-class errors), a storage outage is a 503.
    model: read only that model's jobs (GET /models/<name>/jobs/{job_id}); another model's job is not found."""
    data = store.get_json(job_id, "job.json")
    record = JobRecord.from_json(data) if data is not None else None
    if record is None or (model is not None and record.model != model):
        raise ApiError(404, "job_not_found", "no such job; it may have expired")
    head = {"job_id": job_id, "submitted_at": record.created_at}
    stored = store.get_json(job_id, "result.json")
    if stored is not None:
        result = json.loads(stored)
    else:
        answer = store.read(record.output)
        if answer is None:
            failure = store.read(record.failure)
            if failure is None:
                return {**head, "status": QUEUED}
            return {**head, "status": FAILED, "error": failure_error(failure)}
        try:
            result = {"result": finish(record, answer)}
        except ApiError as error:
            if error.status != 502:
                raise
            result = {"error": {"code": error.code, "message": error.message}}
        store.put_json(job_id, "result.json", json.dumps(result, separators=(",", ":")).encode())
    if "error" in result:
        return {**head, "status": FAILED, "error": result["error"]}
    return {**head, "status": DONE, **respond(record, result["result"])}


def failure_error(data: bytes) -> dict:
    """The error body of a failed job from SageMaker's failure object: the model's own words, cut short."""
    text = data.decode("utf-8", "replace").strip()
    code = "model_rejected_input" if INPUT_REFUSED in text else "model_error"
    if len(text) > FAILURE_MESSAGE_CHARS:
        text = text[:FAILURE_MESSAGE_CHARS - 3] + "..."
    return {"code": code, "message": f"the model failed: {text or 'no detail'}"}
