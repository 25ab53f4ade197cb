"""Async jobs: a request queued on a SageMaker Asynchronous Inference endpoint, and its state read back from S3.

Pure like the other pipelines: S3 and the endpoint are reached only through the JobStore and AsyncEndpoint passed in
(model_api.aws implements them with boto3; local mode runs the same code against its loopback stand-ins).

A job is a few objects, no database (prefix jobs/):
  jobs/<job_id>/input-<model>.json  the model request SageMaker reads (InputLocation); its S3 metadata holds the job
                                    record (model, action, accept, time, request id), so submitting costs one PUT
  jobs/output/<model>/<job_id>...   SageMaker's: the model's answer, named after the inference id (= the job id)
  jobs/failures/<model>/<job_id>... SageMaker's: the error, likewise
  jobs/<job_id>/job.json            only if SageMaker named the outcome otherwise than expected: where it went
  jobs/<job_id>/result.json         written by the first poll that sees the outcome: the record and the finished
                                    result (image keys, text, or the error), so every later poll is one GET
The job id is 128 random bits in hex: unguessable, and the only handle on a job. Nothing lists jobs for a caller.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping, Optional, Protocol

from model_api.calls import ModelCall
from model_api.container_text import INPUT_REFUSED, container_summary
from model_api.errors import ApiError

log = logging.getLogger("model_api")
JOB_ID = re.compile(r"[0-9a-f]{32}\Z")
JOBS_PATH = "/jobs"
QUEUED, DONE, FAILED = "queued", "done", "failed"
INPUT = "input-{model}.json"
NOT_FOUND = "no such job; job ids are the 32 hex characters POST returned, and jobs expire"


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    model: str
    action: str
    accept: str
    created_at: str  # ISO 8601 UTC
    request_id: str
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))  # ASCII: it travels as S3 metadata

    @classmethod
    def from_json(cls, data) -> "JobRecord":
        return cls(**(json.loads(data) if isinstance(data, (str, bytes)) else data))


class JobStore(Protocol):
    def put_input(self, record: JobRecord, body: bytes, content_type: str) -> str:
        """Store the model request with the record as its metadata; return its S3 URI. Raises ApiError."""

    def delete_input(self, job_id: str, model: str) -> None:
        """Remove a stored request whose job never started (best effort)."""

    def put_json(self, job_id: str, name: str, data: bytes) -> None:
        """Store jobs/<job_id>/<name>. Raises ApiError."""

    def result(self, job_id: str) -> Optional[bytes]:
        """jobs/<job_id>/result.json in one GET, or None if it is not (yet) there. Raises ApiError."""

    def files(self, job_id: str) -> list[str]:
        """The names under jobs/<job_id>/ (one list call). Raises ApiError."""

    def record(self, job_id: str, model: str) -> JobRecord:
        """The record stored with the job's input. Raises ApiError."""

    def get_json(self, job_id: str, name: str) -> bytes:
        """jobs/<job_id>/<name>, known to exist. Raises ApiError."""

    def outcome(self, job_id: str, model: str, locations: Optional[dict] = None) -> tuple[Optional[bytes], bool]:
        """(the answer or the error SageMaker wrote, whether it is the error); (None, False) while there is none.
        locations: {"output", "failure"} URIs when SageMaker named them otherwise. Raises ApiError."""

    def expected(self, job_id: str, model: str) -> tuple[str, str]:
        """The output and failure URIs SageMaker is expected to name for a job (prefixes, without extension)."""


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
    """Queue a validated model request as a job: the 202 body. One S3 PUT and one InvokeEndpointAsync; nothing is
    left behind if the endpoint refuses the job."""
    record = JobRecord(job_id(), model, action, call.accept, now().strftime("%Y-%m-%dT%H:%M:%SZ"), request_id,
                       call.meta)
    input_uri = store.put_input(record, call.body, call.content_type)
    try:
        output, failure = endpoint.invoke_async(input_uri, call.content_type, call.accept, record.job_id)
    except ApiError:
        store.delete_input(record.job_id, model)
        raise
    expected_output, expected_failure = store.expected(record.job_id, model)
    if not (output.startswith(expected_output) and (failure or expected_failure).startswith(expected_failure)):
        # SageMaker named the outcome otherwise than after the inference id: remember where it goes.
        store.put_json(record.job_id, "job.json", json.dumps({"output": output, "failure": failure}).encode())
    return {"job_id": record.job_id, "status": QUEUED, "status_url": status_url(event, record.job_id),
            "submitted_at": record.created_at, "request_id": request_id}


def job_id_from(event: Mapping) -> str:
    """The job id of GET /jobs/{job_id}; a malformed one is a job that does not exist (404)."""
    job_id = ((event.get("pathParameters") or {}).get("job_id") or "")
    if not JOB_ID.match(job_id):
        raise ApiError(404, "job_not_found", NOT_FOUND)
    return job_id


Finish = Callable[[JobRecord, bytes, Callable[[], bytes]], dict]


def status(job_id: str, *, store: JobStore, finish: Finish, respond: Callable[[JobRecord, dict], dict],
           model: Optional[str] = None, finished: Callable[[str], None] = lambda state: None) -> dict:
    """A job's state: queued, failed (with the model's error) or done (with the same body the synchronous route
    answers, made by respond() from the stored result). finish(record, answer, load_input) turns the model's answer
    into that result once; an answer the API cannot use fails the job (502-class errors); a storage outage is a 503.
    model: read only that model's jobs (GET /models/<name>/jobs/{job_id}); another model's job is not found.
    finished(state) is told once per job, by the poll that records its outcome: "completed" or "failed"."""
    stored = store.result(job_id)
    if stored is not None:
        saved = json.loads(stored)
        record = JobRecord.from_json(saved["record"])
        if model is not None and record.model != model:
            raise ApiError(404, "job_not_found", NOT_FOUND)
        return _answer(record, saved, respond)
    files = store.files(job_id)
    owner = next((name[len("input-"):-len(".json")] for name in files
                  if name.startswith("input-") and name.endswith(".json")), None)
    if owner is None or (model is not None and owner != model):
        raise ApiError(404, "job_not_found", NOT_FOUND)
    record = store.record(job_id, owner)
    locations = json.loads(store.get_json(job_id, "job.json")) if "job.json" in files else None
    outcome, is_error = store.outcome(job_id, owner, locations)
    if outcome is None:
        return {"job_id": job_id, "submitted_at": record.created_at, "status": QUEUED}
    if is_error:
        # The whole text stays in the failure object; the log has it with the request id, the caller a summary.
        log.warning("job %s failed in the model", job_id, extra={"container_message": outcome[:4000].decode(
            "utf-8", "replace")})
        saved = {"error": failure_error(outcome)}
    else:
        try:
            saved = {"result": finish(record, outcome, lambda: store.get_json(job_id, INPUT.format(model=owner)))}
        except ApiError as error:
            if error.status != 502:
                raise
            saved = {"error": {"code": error.code, "message": error.message}}
    saved["record"] = json.loads(record.to_json())
    store.put_json(job_id, "result.json", json.dumps(saved, separators=(",", ":")).encode())
    finished("failed" if "error" in saved else "completed")
    return _answer(record, saved, respond)


def _answer(record: JobRecord, saved: dict, respond: Callable[[JobRecord, dict], dict]) -> dict:
    head = {"job_id": record.job_id, "submitted_at": record.created_at}
    if "error" in saved:
        return {**head, "status": FAILED, "error": saved["error"]}
    return {**head, "status": DONE, **respond(record, saved["result"])}


def failure_error(data: bytes) -> dict:
    """The error body of a failed job from SageMaker's failure object (the container's error text): worded as the
    synchronous route words the same outcome (model_api.aws.invoke_error), the container's words only as a short,
    safe summary (model_api.container_text)."""
    text = data.decode("utf-8", "replace").strip()
    if INPUT_REFUSED in text:  # our inference code's refusal, wherever the toolkit put it in its text
        said = text[text.index(INPUT_REFUSED):]
        return {"code": "model_rejected_input", "message": f"the model refused the input: "
                                                           f"{container_summary(said, refused=True)}"}
    return {"code": "model_error", "message": f"the model failed: {container_summary(text, refused=False)}"}
