"""Local SageMaker endpoints: models behind the inference container contract and the runtime API path.

- `GET /ping`, `POST /invocations`: the container contract (what SageMaker itself calls inside the instance), for
  the first model.
- `POST /endpoints/<name>/invocations`: the SageMaker runtime InvokeEndpoint API, so the unchanged Lambda code
  reaches each model through boto3 with only AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME set. Errors come back the way the
  runtime reports them (ModelError with the container's status, ValidationException for an unknown endpoint).
  A shared endpoint's models are keyed <endpoint>/<component> and chosen by the inference component header.
- `POST /endpoints/<name>/invocations-response-stream`: InvokeEndpointWithResponseStream, the answer as the
  runtime's event stream (local.eventstream): token by token from the TGI stand-in, whole from the others.
- `POST /endpoints/<name>/async-invocations`: InvokeEndpointAsync for a model hosted async: 202 at once, then a
  background worker (one per model, jobs in order) reads the request from the local S3, runs the model and writes
  the answer to <output path>/<inference id>.out or the error to <failure path>/<inference id>-error.out, the
  layout the stack configures (AsyncInferenceConfig). The S3 write is what the Lambda polls for, as deployed.
- `POST /` with `X-Amz-Target: SageMaker.<Operation>`: the SageMaker API's batch transform calls
  (local/transform.py), for `make batch LOCAL=1`.

Like the service, it takes only requests signed (SigV4) by credentials local mode issued for this run: the runtime
and SageMaker API calls; made-up credentials are UnrecognizedClientException, a wrong signature
InvalidSignatureException (403, the AWS JSON protocols' codes). The container contract's /invocations has no
authentication on SageMaker (only SageMaker reaches a container); here any process or web page of this machine
could, so it takes the run's signature or its token (`Authorization: Bearer <endpoint_token>` from the ready
file), and never a form's content type (text/plain, form-urlencoded, multipart: what a cross-site form may post
without asking). /ping stays open, as a health check. Bodies are bounded as the service bounds them (6 MB for a real-time invocation:
SageMaker Developer Guide, "Real-time inference" payload limit), and requests by local/http_guard.py's deadline.
"""

from __future__ import annotations

import hmac
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http import HTTPStatus
from itertools import chain
from typing import Optional
from urllib.parse import urlsplit

from local import eventstream
from local.http_guard import CONNECTION_GONE, GuardedHandler, GuardedServer, read_body
from local.s3_auth import Refused, check_header
from local.toolkit import ModelError
from local.transform import LocalTransformJobs, TransformError

RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations(?P<stream>-response-stream)?$")
# What a web page may post to any origin without a CORS preflight (the Fetch standard's CORS-safelisted types).
FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
ASYNC_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/async-invocations$")
LOCAL_ACCOUNT = "000000000000"
MAX_INVOCATION_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's payload limit (real-time; an async job's is in S3)
# The AWS JSON protocols' answers to a credential or signature they refuse.
_AUTH_ERRORS = {"InvalidAccessKeyId": ("UnrecognizedClientException",
                                       "The security token included in the request is invalid."),
                "SignatureDoesNotMatch": ("InvalidSignatureException", "The request signature we calculated does not "
                                          "match the signature you provided."),
                "RequestTimeTooSkewed": ("InvalidSignatureException", "Signature expired: the request time is too "
                                         "far from the current time."),
                "AccessDenied": ("MissingAuthenticationTokenException", "Missing Authentication Token")}


class EndpointServer(GuardedServer):
    # The runtime's answer when it cannot take more (the Lambda's 503 endpoint_unavailable, Retry-After).
    busy_answer = b'{"message": "too many requests at once"}'
    busy_headers = "x-amzn-ErrorType: ServiceUnavailable\r\n"

    def __init__(self, address, credentials=None, request_timeout: float = 10.0, max_connections: int = 64,
                 token: Optional[str] = None):
        """credentials: who may call the runtime and SageMaker APIs (local.s3_auth.IssuedCredentials); None takes
        any signature (tests that drive the stand-in alone). token: what else /invocations takes as a bearer
        token (None: a signature only)."""
        self.credentials = credentials
        self.token = token
        # endpoint name -> anything with invoke(body, content_type, accept) -> (bytes, content_type)
        self.models: dict = {}
        # endpoint name -> (S3 output URI, S3 failure URI) for models hosted async; `s3` reads and writes them.
        self.async_paths: dict[str, tuple[str, str]] = {}
        self.s3 = None
        # Batch transform jobs: their batch model names map to models in `models` (local mode fills it).
        self.transforms = LocalTransformJobs()
        self._workers: dict[str, ThreadPoolExecutor] = {}
        super().__init__(address, _Handler, request_timeout, max_connections)

    def queue_job(self, name: str, input_uri: str, content_type: str, accept: str, job_id: str) -> tuple[str, str]:
        output, failure = self.async_paths[name]
        output_uri, failure_uri = f"{output}/{job_id}.out", f"{failure}/{job_id}-error.out"
        worker = self._workers.setdefault(name, ThreadPoolExecutor(1, thread_name_prefix=f"job-{name}"))
        worker.submit(self._run_job, self.models[name], input_uri, content_type, accept, output_uri, failure_uri)
        return output_uri, failure_uri

    def _run_job(self, model, input_uri, content_type, accept, output_uri, failure_uri) -> None:
        try:
            body = self._get(input_uri)
            content, _ = model.invoke(body, content_type, accept)
            self._put(output_uri, content)
        except ModelError as error:
            kind = "client" if 400 <= error.status < 500 else "server"
            self._put(failure_uri, f"Received {kind} error ({error.status}) from primary with message "
                                   f"\"{error.message}\".".encode())
        except Exception as error:  # a stand-in's own fault still ends the job, as SageMaker's would
            print(f"local: async job failed: {error!r}", file=sys.stderr, flush=True)
            self._put(failure_uri, f"the job could not run: {type(error).__name__}".encode())

    def _get(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _put(self, uri: str, data: bytes) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def server_close(self):
        for worker in self._workers.values():
            worker.shutdown(wait=False, cancel_futures=True)
        self.transforms.close()
        super().server_close()


class _Handler(GuardedHandler):
    server: EndpointServer

    def log_message(self, *args):  # quiet: the API server logs one line per request
        pass

    def answer_error(self, status: int, message: str) -> None:
        self._runtime_error(status, "ValidationError" if status < 500 else "InternalFailure", message,
                            {"Connection": "close"})

    def do_GET(self):
        self.request_read()
        if self.path == "/ping":
            self._send(200 if self.server.models else 503, b"", "text/plain")
        else:
            self._runtime_error(404, "UnknownOperationException", "not found")

    def _signed(self, body: bytes) -> bool:
        """Whether the request is signed by this run's credentials; answers the refusal when not."""
        if self.server.credentials is None:
            return True
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            check_header(self.command, url.path, url.query, headers, body, self.server.credentials,
                         datetime.now(timezone.utc))
        except Refused as refused:
            error_type, message = _AUTH_ERRORS.get(refused.code, ("AccessDeniedException", refused.message))
            self._runtime_error(403, error_type, message)
            return False
        return True

    def _contract_caller(self, body: bytes) -> bool:
        """Whether /invocations may be served: a form's content type never (415), then the run's token or
        signature (403 otherwise)."""
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media in FORM_TYPES:
            self._runtime_error(415, "UnsupportedMediaType", f"content type {media} is what a web form posts; "
                                                             "send the model's own (application/json)")
            return False
        token = self.server.token
        sent = self.headers.get("Authorization") or ""
        if token is not None and hmac.compare_digest(sent.encode("utf-8", "surrogatepass"),
                                                     f"Bearer {token}".encode()):
            return True
        if token is not None and sent.startswith("Bearer "):
            self._runtime_error(403, "AccessDeniedException", "the token is not this run's (endpoint_token in the "
                                                              "ready file)")
            return False
        return self._signed(body)

    def do_POST(self):
        body = read_body(self, MAX_INVOCATION_BYTES)
        if body is None:
            return
        self.request_read()
        if self.path == "/invocations":
            if not self._contract_caller(body):
                return
        elif not self._signed(body):
            return
        content_type = self.headers.get("Content-Type", "application/json")
        accept = self.headers.get("Accept", "application/json")
        target = self.headers.get("X-Amz-Target", "")
        if self.path == "/" and target.startswith("SageMaker."):
            self._control_plane(target.removeprefix("SageMaker."), body)
            return
        if self.path == "/invocations" and self.server.models:
            self._invoke(next(iter(self.server.models.values())), body, content_type, accept, runtime=False)
            return
        queued = ASYNC_PATH.match(self.path)
        if queued:
            self._queue(queued["name"])
            return
        match = RUNTIME_PATH.match(self.path)
        if not match:
            self._runtime_error(404, "UnknownOperationException", "not found")
        else:
            # A shared endpoint's models are its inference components, named in this header (InvokeEndpoint's
            # InferenceComponentName); each is served as its own model here.
            component = self.headers.get("X-Amzn-SageMaker-Inference-Component")
            name = f"{match['name']}/{component}" if component else match["name"]
            if name not in self.server.models:
                self._runtime_error(400, "ValidationException",
                                    f"Endpoint {match['name']} of account {LOCAL_ACCOUNT} not found."
                                    if not component else f"Inference component {component} not found.")
            elif match["stream"]:
                self._invoke_stream(self.server.models[name], body, content_type, accept)
            else:
                self._invoke(self.server.models[name], body, content_type, accept, runtime=True)

    def _invoke(self, model, body: bytes, content_type: str, accept: str, runtime: bool) -> None:
        try:
            content, response_type = model.invoke(body, content_type, accept)
        except ModelError as error:
            if not runtime:  # the container contract: the container's own status and message
                self._send(error.status, error.message.encode(), "text/plain")
                return
            self._model_error(error)
            return
        extra = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"} if runtime else {}
        self._send(200, content, response_type, extra)

    def _invoke_stream(self, model, body: bytes, content_type: str, accept: str) -> None:
        """InvokeEndpointWithResponseStream: the container's answer as PayloadPart events (local.eventstream), as it
        comes from a model that streams (invoke_stream: the TGI stand-in with "stream": true), else whole, in one
        part, as SageMaker relays a container that answers at once. Refused before the first byte: ModelError
        (424), as InvokeEndpoint answers. A failure after it: an InternalStreamFailure event. A caller that goes
        away closes the model's stream, which stops its work."""
        streams = getattr(model, "invoke_stream", None)
        try:
            parts = streams(body, content_type, accept) if streams is not None else iter(
                [model.invoke(body, content_type, accept)[0]])
            first = next(parts, None)
        except ModelError as error:
            self._model_error(error)
            return
        self.send_response(200)
        for name, value in (("Content-Type", eventstream.CONTENT_TYPE), ("Transfer-Encoding", "chunked"),
                            ("X-Amzn-SageMaker-Content-Type", "text/event-stream" if streams else accept),
                            ("x-Amzn-Invoked-Production-Variant", "AllTraffic")):
            self.send_header(name, value)
        self.end_headers()
        try:
            try:
                for part in chain([first] if first else [], parts):
                    if part:
                        self._chunk(eventstream.payload_part(part))
            except CONNECTION_GONE:
                raise
            except Exception as error:  # the model failed mid-answer: the runtime's exception event
                print(f"local: a streamed answer failed: {error!r}", file=sys.stderr, flush=True)
                self._chunk(eventstream.internal_stream_failure(f"the model failed: {type(error).__name__}"))
            self.wfile.write(b"0\r\n\r\n")
        except CONNECTION_GONE:
            self.close_connection = True  # the caller went away: closing its stream below stops the model
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                close()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n" % len(data) + data + b"\r\n")
        self.wfile.flush()

    def _model_error(self, error: ModelError) -> None:
        kind = "CLIENT" if 400 <= error.status < 500 else "SERVER"
        self._send(424, json.dumps({
            "ErrorCode": f"{kind}_ERROR_FROM_MODEL",
            "OriginalStatusCode": error.status,
            "OriginalMessage": error.message,
            "Message": f"Received {kind.lower()} error ({error.status}) from primary with message "
                       f"\"{error.message}\".",
        }).encode(), "application/json", {"x-amzn-ErrorType": "ModelError"})

    def _queue(self, name: str) -> None:
        """InvokeEndpointAsync: its parameters arrive as X-Amzn-SageMaker-* headers (botocore's service model)."""
        if name not in self.server.models:
            self._runtime_error(400, "ValidationError", f"Endpoint {name} of account {LOCAL_ACCOUNT} not found.")
            return
        if name not in self.server.async_paths:
            self._runtime_error(400, "ValidationError", f"Endpoint {name} is not an asynchronous inference endpoint.")
            return
        header = self.headers.get
        job_id = header("X-Amzn-SageMaker-Inference-Id") or ""
        output, failure = self.server.queue_job(
            name, header("X-Amzn-SageMaker-InputLocation") or "",
            header("X-Amzn-SageMaker-Content-Type") or "application/json",
            header("X-Amzn-SageMaker-Accept") or "application/json", job_id)
        self._send(202, json.dumps({"InferenceId": job_id}).encode(), "application/json",
                   {"X-Amzn-SageMaker-OutputLocation": output, "X-Amzn-SageMaker-FailureLocation": failure})

    def _control_plane(self, operation: str, body: bytes) -> None:
        """The SageMaker API's JSON protocol: errors are 400 with {"__type": code, "message": ...}."""
        json_type = "application/x-amz-json-1.1"
        try:
            request = json.loads(body or b"{}")
            response = self.server.transforms.handle(operation, request)
        except ValueError:
            self._send(400, json.dumps({"__type": "SerializationException", "message": "body is not JSON"}).encode(),
                       json_type)
        except TransformError as error:
            self._send(400, json.dumps({"__type": error.code, "message": error.message}).encode(), json_type)
        else:
            self._send(200, json.dumps(response).encode(), json_type)

    def _runtime_error(self, status: int, error_type: str, message: str, headers: dict | None = None) -> None:
        self._send(status, json.dumps({"message": message}).encode(), "application/json",
                   {"x-amzn-ErrorType": error_type, **(headers or {})})

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
