"""The edges of the pipeline that talk to AWS: the SageMaker endpoint and the S3 image store.

Clients are created once per Lambda container with explicit timeouts and retries. Every AWS failure becomes an
ApiError with a deliberate status, so the caller never sees a botocore traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, Mapping, Optional, Sequence
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
import urllib3.exceptions
from botocore.config import Config
from botocore.credentials import CredentialProvider, RefreshableCredentials
from botocore.eventstream import ParserError as EventStreamParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)

from model_api.container_text import INPUT_REFUSED, container_summary
from model_api.errors import ApiError
from model_api.jobs import JobRecord

log = logging.getLogger("model_api")

# Seconds to wait before retrying, sent as Retry-After.
RETRY_AFTER_THROTTLED = 2
RETRY_AFTER_UNAVAILABLE = 30
RETRY_AFTER_STARTING = 60
RETRY_AFTER_STORAGE = 1
# SageMaker real-time responses are at most 6 MB; a longer body is not something to hold in memory and parse.
MAX_MODEL_RESPONSE_BYTES = 6 * 1024 * 1024


def sagemaker_runtime_client(env: Mapping[str, str]):
    """One attempt only: an invocation holds a GPU for seconds and the read timeout is sized so that exactly one fits
    in the Lambda's time; throttling is answered with 429 + Retry-After so the caller retries, not us."""
    return boto3.client(
        "sagemaker-runtime",
        region_name=env.get("AWS_REGION"),
        endpoint_url=env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME") or None,
        config=Config(
            connect_timeout=float(env.get("INVOKE_CONNECT_TIMEOUT_SECONDS", "2")),
            read_timeout=float(env.get("INVOKE_READ_TIMEOUT_SECONDS", "22")),
            retries={"mode": "standard", "total_max_attempts": 1},
            tcp_keepalive=True,
        ),
    )


def s3_client(env: Mapping[str, str], credentials=None):
    """SigV4, virtual-hosted: https://<bucket>.s3.<region>.amazonaws.com/... in every region but us-east-1, where
    botocore keeps the legacy global host https://<bucket>.s3.amazonaws.com/... (us-east-1's own endpoint; the
    signature's scope still names us-east-1). Without signature_version boto3 may presign SigV2, which newer regions
    refuse. Local mode sets S3_ADDRESSING_STYLE=path for its loopback S3. credentials: botocore credentials to sign
    with (the URL signer's), instead of the Lambda's own."""
    session = boto3.session.Session(botocore_session=_session_with(credentials)) if credentials is not None \
        else boto3.session.Session()
    return session.client(
        "s3",
        region_name=env.get("AWS_REGION"),
        endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or None,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": env.get("S3_ADDRESSING_STYLE", "virtual")},
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "total_max_attempts": 3},
            max_pool_connections=16,
            tcp_keepalive=True,
        ),
    )


class _GivenCredentials(CredentialProvider):
    METHOD = CANONICAL_NAME = "given"

    def __init__(self, credentials):
        super().__init__()
        self._credentials = credentials

    def load(self):
        return self._credentials


def _session_with(credentials) -> botocore.session.Session:
    """A botocore session whose first credential provider hands out `credentials` (botocore's extension point).
    It shares the default session's data loader, so the service model and endpoint rules already parsed for the
    first S3 client are not parsed again (about 100 ms of a cold start)."""
    session = botocore.session.get_session()
    session.register_component("data_loader", boto3._get_default_session()._session.get_component("data_loader"))
    session.get_component("credential_provider").insert_before("env", _GivenCredentials(credentials))
    return session


def sts_client(env: Mapping[str, str]):
    # Endpoint overrides from `env` (local mode, tests), not only os.environ: these clients may be built later,
    # on another thread, from a snapshot of the environment.
    return boto3.client(
        "sts",
        region_name=env.get("AWS_REGION"),
        endpoint_url=env.get("AWS_ENDPOINT_URL_STS") or None,
        config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3}),
    )


class UrlSigner:
    """Credentials for presigned URLs whose expiry is known: a session of a read-only signer role, assumed from the
    Lambda's role and renewed while it still has `ttl_seconds + margin` to live, so every URL signed with it dies at
    its own X-Amz-Expires and not earlier. (A URL signed with the Lambda's own session dies when that session does,
    at a time Lambda does not expose.) Assuming a role from a role session is role chaining: AWS caps the session at
    1 hour, which is why MAX_URL_TTL_SECONDS is below it."""

    SESSION_SECONDS = 3600
    MARGIN_SECONDS = 60

    def __init__(self, sts, role_arn: str, ttl_seconds: int, session_name: str = "presign-images",
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        if ttl_seconds + self.MARGIN_SECONDS >= self.SESSION_SECONDS:
            raise ValueError(f"a URL TTL of {ttl_seconds} s does not fit in a {self.SESSION_SECONDS} s role session")
        self._sts, self.role_arn, self._session_name = sts, role_arn, session_name
        self.assumed = 0  # how many sessions were assumed (tests, logs)
        # botocore refreshes when fewer than advisory seconds remain, and refuses to sign with fewer than mandatory:
        # so a signing session always has more than ttl + margin seconds left.
        self.credentials = RefreshableCredentials.create_from_metadata(
            metadata={"access_key": "", "secret_key": "", "token": "",
                      "expiry_time": "1970-01-01T00:00:00Z"},  # expired: the first use assumes the role
            refresh_using=self._assume,
            method="assume-role",
            advisory_timeout=ttl_seconds + 2 * self.MARGIN_SECONDS,
            mandatory_timeout=ttl_seconds + self.MARGIN_SECONDS,
        )
        self.credentials._time_fetcher = clock
        self._lock = threading.Lock()

    def _assume(self) -> dict:
        with self._lock:
            try:
                answer = self._sts.assume_role(RoleArn=self.role_arn, RoleSessionName=self._session_name,
                                               DurationSeconds=self.SESSION_SECONDS)
            except (BotoCoreError, ClientError) as exc:
                raise ApiError(500, "presign_failed", "could not get the credentials that sign image URLs") from exc
            self.assumed += 1
        creds = answer["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    @property
    def expiry(self) -> Optional[datetime]:
        return self.credentials._expiry_time


def url_expiry(url: str) -> datetime:
    """When a SigV4 presigned URL stops working by its own terms: X-Amz-Date + X-Amz-Expires."""
    query = parse_qs(urlsplit(url).query)
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return signed + timedelta(seconds=int(query["X-Amz-Expires"][0]))


class SageMakerEndpoint:
    """Endpoint (model_api.images) backed by InvokeEndpoint on one endpoint. inputs_only_fail_400: a model served by
    the toolkit's own pipeline (no code of ours), where a 400 means the pipeline could not take the input."""

    def __init__(self, client, endpoint_name: str, inputs_only_fail_400: bool = False, job_timeout_seconds: int = 900,
                 job_ttl_seconds: int = 21600, component: Optional[str] = None):
        self._client = client
        self.endpoint_name = endpoint_name
        # Shared hosting: the inference component on the endpoint that serves this model (InferenceComponentName).
        self._target = {"InferenceComponentName": component} if component else {}
        self._inputs_only_fail_400 = inputs_only_fail_400
        self.job_timeout_seconds, self.job_ttl_seconds = job_timeout_seconds, job_ttl_seconds
        self._timing = threading.local()  # local mode calls one handler from several threads

    def take_latency_ms(self) -> Optional[float]:
        """Milliseconds the last invoke() on this thread took (the model, as the Lambda waits for it), then forget
        it: None when no model was invoked since."""
        latency, self._timing.ms = getattr(self._timing, "ms", None), None
        return latency

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        started = time.monotonic()
        try:
            answer, answer_type = self._invoke(body, content_type, accept)
        finally:
            self._timing.ms = round((time.monotonic() - started) * 1000, 1)
        # Sizes and types only (log_level=DEBUG): never the bodies, which hold prompts.
        log.debug("model answered", extra={"model_request_bytes": len(body), "model_answer_bytes": len(answer),
                                           "model_answer_type": answer_type, "model_latency_ms": self._timing.ms})
        return answer, answer_type

    def _invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name, Body=body, ContentType=content_type, Accept=accept, **self._target
            )
            body = response["Body"].read(MAX_MODEL_RESPONSE_BYTES + 1)
            if len(body) > MAX_MODEL_RESPONSE_BYTES:
                raise ApiError(502, "bad_model_response", "the model's answer is over the 6 MB real-time limit")
            return body, response.get("ContentType", "")
        except ClientError as exc:
            raise invoke_error(exc, self.endpoint_name, self._inputs_only_fail_400) from exc
        except ReadTimeoutError as exc:
            raise ApiError(504, "model_timeout", "the model did not answer in time; try fewer steps, fewer images "
                                                 "or a smaller size") from exc
        except (ConnectTimeoutError, EndpointConnectionError) as exc:
            raise ApiError(503, "endpoint_unreachable", "the SageMaker runtime could not be reached",
                           RETRY_AFTER_UNAVAILABLE) from exc
        except (ConnectionClosedError, ResponseStreamingError) as exc:
            raise ApiError(502, "model_connection_lost", "the connection to the model broke off mid-response") from exc
        except BotoCoreError as exc:
            raise ApiError(502, "model_unavailable", f"invoking the model failed: {failure_words(exc)}") from exc


    def invoke_stream(self, body: bytes, content_type: str, accept: str) -> "ModelStream":
        """InvokeEndpointWithResponseStream (a container that streams: TGI with "stream": true): the answer's bytes
        as they come. Errors before the first byte are the ApiErrors invoke() raises (the same codes: ModelError
        with the container's status, throttling, ...); later ones are raised while iterating (ModelStream). IAM:
        sagemaker:InvokeEndpoint covers it (SageMaker API Reference, InvokeEndpointWithResponseStream)."""
        started = time.monotonic()
        try:
            response = self._client.invoke_endpoint_with_response_stream(
                EndpointName=self.endpoint_name, Body=body, ContentType=content_type, Accept=accept, **self._target)
        except ClientError as exc:
            raise invoke_error(exc, self.endpoint_name, self._inputs_only_fail_400) from exc
        except ReadTimeoutError as exc:
            raise ApiError(504, "model_timeout", "the model did not begin its answer in time") from exc
        except (ConnectTimeoutError, EndpointConnectionError) as exc:
            raise ApiError(503, "endpoint_unreachable", "the SageMaker runtime could not be reached",
                           RETRY_AFTER_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            raise ApiError(502, "model_unavailable", f"invoking the model failed: {failure_words(exc)}") from exc
        self._timing.ms = round((time.monotonic() - started) * 1000, 1)  # until the answer began
        return ModelStream(response["Body"], response.get("ContentType", ""))

    def invoke_async(self, input_uri: str, content_type: str, accept: str, job_id: str) -> tuple[str, str]:
        """InvokeEndpointAsync (model_api.jobs.AsyncEndpoint): the request is read from input_uri by SageMaker.
        Only parameters every botocore since async inference knows (InputLocation, InferenceId, the types, the
        timeouts): the Lambda runtime's boto3 may trail this repository's."""
        try:
            response = self._client.invoke_endpoint_async(
                EndpointName=self.endpoint_name, InputLocation=input_uri, ContentType=content_type, Accept=accept,
                InferenceId=job_id, InvocationTimeoutSeconds=self.job_timeout_seconds,
                RequestTTLSeconds=self.job_ttl_seconds)
        except ClientError as exc:
            raise invoke_error(exc, self.endpoint_name) from exc
        except (ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError) as exc:
            raise ApiError(503, "endpoint_unreachable", "the SageMaker runtime could not be reached",
                           RETRY_AFTER_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            raise ApiError(502, "model_unavailable", f"queueing the job failed: {failure_words(exc)}") from exc
        return response["OutputLocation"], response.get("FailureLocation") or ""


class ModelStream:
    """The bytes of a streamed model answer (the PayloadParts of InvokeEndpointWithResponseStream's event stream),
    as an iterable; close() ends it early (a caller that went away), which closes the connection to SageMaker.
    Errors in the stream become ApiErrors: ModelStreamError (its ErrorCode ModelInvocationTimeExceeded: the model
    took longer than SageMaker allows; StreamBroken: the connection to the model broke) and InternalStreamFailure
    (SageMaker API Reference, ResponseStream)."""

    def __init__(self, events, content_type: str = ""):
        self._events = events
        self.content_type = content_type

    def __iter__(self) -> Iterator[bytes]:
        try:
            for event in self._events:
                part = event.get("PayloadPart")
                if part and part.get("Bytes"):
                    yield part["Bytes"]
        except ClientError as exc:  # botocore's EventStreamError for an exception event
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), (error.get("Message") or "")[:300]
            # botocore keeps only Code and Message of an event stream's exception (parsers.py, EventStream JSON
            # _do_error_parse), not ModelStreamError's ErrorCode: a timeout is told by its message ("did not
            # complete sending the inference response in the allotted time", tests/lambda/test_streaming.py).
            if code == "ModelStreamError" and ("time" in message.lower() or "Exceeded" in message):
                raise ApiError(504, "model_timeout", f"the model did not finish its answer in the time SageMaker "
                                                     f"allows: {message}") from exc
            if code == "ModelStreamError":
                raise ApiError(502, "model_connection_lost", f"the model's answer broke off: {message}") from exc
            raise ApiError(502, "model_unavailable", f"the model's answer failed ({code or 'unknown error'})") \
                from exc
        # botocore's EventStream reads the connection with urllib3's HTTPResponse.stream() and wraps none of its
        # errors (botocore/eventstream.py, EventStream._create_raw_event_generator), nor its own parse errors
        # (eventstream.ParserError): each is named here. Their text holds the host and port: never passed on.
        except (ReadTimeoutError, urllib3.exceptions.ReadTimeoutError) as exc:
            raise ApiError(504, "model_timeout", "the model went quiet in the middle of its answer") from exc
        except EventStreamParserError as exc:
            raise ApiError(502, "bad_model_response", "the model's answer stream could not be read (a damaged "
                                                      "event)") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(502, "model_connection_lost", "the model's answer broke off: the connection broke "
                                                         "off") from exc
        except BotoCoreError as exc:
            raise ApiError(502, "model_connection_lost", f"the model's answer broke off: {failure_words(exc)}") \
                from exc

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # closing a broken connection may fail: nothing left to do about it
                log.debug("closing the model stream failed: %r", exc)


def invoke_error(exc: ClientError, endpoint_name: str, inputs_only_fail_400: bool = False) -> ApiError:
    """The status the caller gets for each InvokeEndpoint error code."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = (error.get("Message") or "")[:300]
    if code == "ModelError":
        original = exc.response.get("OriginalStatusCode")
        said = exc.response.get("OriginalMessage") or message
        status = f" (container status {original})" if original else ""
        refused = isinstance(original, int) and 400 <= original < 500 and (
            original != 400 or said.startswith(INPUT_REFUSED) or inputs_only_fail_400)
        # The whole text for whoever reads the logs (the line carries the request id); the caller gets a summary.
        log.warning("the model container answered %s", original, extra={"container_message": said[:4000]})
        if refused:
            # The container refused this input (TGI's 422 for a token budget; our inference code's marked 400): the
            # caller's to fix, in the container's own words. A bare 400 from the toolkit may be its own fault: 502.
            return ApiError(400, "model_rejected_input", f"the model refused the input{status}: "
                                                         f"{container_summary(said, refused=True)}")
        return ApiError(502, "model_error", f"the model failed{status}: {container_summary(said, refused=False)}")
    if code == "ThrottlingException":
        return ApiError(429, "throttled", "the model endpoint is busy; retry later", RETRY_AFTER_THROTTLED)
    if code in ("ModelNotReadyException", "ServiceUnavailable", "ServiceUnavailableException"):
        return ApiError(503, "endpoint_unavailable", "the model endpoint is not ready; retry later",
                        RETRY_AFTER_UNAVAILABLE)
    # A shared model scaled to zero copies: InvokeEndpoint answers 400 "... has no capacity ..." at once, and that
    # request is what starts a copy (NoCapacityInvocationFailures -> the component's StartFromZero alarm), minutes
    # away (third-party measurement, July 2026: ~9.5 min on ml.g5.xlarge). Not the caller's fault: 503, retry.
    if code in ("ValidationException", "ValidationError") and "no capacity" in message.lower():
        return ApiError(503, "endpoint_unavailable", "the model scaled to zero when idle and is starting (this takes "
                                                     "several minutes); retry later", RETRY_AFTER_STARTING)
    # InvokeEndpointAsync names it ValidationError, InvokeEndpoint ValidationException.
    if code in ("ValidationException", "ValidationError") and _means_endpoint_missing(message):
        return ApiError(503, "endpoint_unavailable", f"endpoint {endpoint_name} is missing or not in service",
                        RETRY_AFTER_UNAVAILABLE)
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        return ApiError(500, "misconfigured", "this API is not allowed to invoke its endpoint (deployment error)")
    return ApiError(502, "model_unavailable", f"invoking the model failed: {code or 'unknown error'}")


def _means_endpoint_missing(message: str) -> bool:
    lowered = message.lower()
    return "not found" in lowered or "inservice" in lowered or "in service" in lowered or "status" in lowered


def url_signing(env: Mapping[str, str], ttl_seconds: int) -> tuple:
    """(S3 client signing as the URL signer role, the UrlSigner): what S3ImageStore signs URLs with."""
    signer = UrlSigner(sts_client(env), env["SIGNER_ROLE_ARN"], ttl_seconds)
    return s3_client(env, signer.credentials), signer


class Deferred:
    """A value built on a background thread, started now and waited for at first use: an image model's Lambda builds
    its S3 clients (about 110 ms of botocore's rule sets and models) while the model works on the first request, not
    before it. after: another Deferred to finish first (one build at a time: they share the GIL)."""

    def __init__(self, build: Callable[[], object], after: Optional["Deferred"] = None):
        work = build if after is None else (lambda: (after.get(), build())[1])
        self._future = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deferred").submit(work)

    def get(self):
        return self._future.result()


def _resolved(value):
    """A client given as itself or as a Deferred of it."""
    return value.get() if isinstance(value, Deferred) else value


class S3ImageStore:
    """ImageStore (model_api.images) on one bucket: writes with the Lambda's client, signs URLs with the signer's
    (a client over the UrlSigner's credentials; `signing`: that pair, or a Deferred of it)."""

    def __init__(self, client, bucket: str, signing=None, max_workers: int = 8):
        self._client = client
        self._signing = signing
        self.bucket = bucket
        # Created once: uploads of a multi-image request overlap instead of queueing.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s3-put")

    @property
    def client(self):
        """The client that writes (built in the background when given as a Deferred)."""
        return _resolved(self._client)

    def _signing_pair(self) -> tuple:
        if self._signing is None:
            return self.client, None
        if isinstance(self._signing, Deferred):
            self._signing = self._signing.get()
        return self._signing

    @property
    def signing_client(self):
        return self._signing_pair()[0]

    @property
    def signer(self) -> Optional[UrlSigner]:
        return self._signing_pair()[1]

    def presign(self, key: str, ttl_seconds: int) -> tuple[str, datetime]:
        try:
            url = self.signing_client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_seconds
            )
        except ApiError:
            raise
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise ApiError(500, "presign_failed", "could not sign the image URL") from exc
        expires = url_expiry(url)
        signer = self.signer
        if signer is not None and (signer.expiry is None or signer.expiry < expires):
            # Cannot happen while botocore honours the mandatory refresh window; never hand out a URL that lies.
            raise ApiError(500, "presign_failed", "the signing credentials would expire before the URL")
        return url, expires

    def put_all(self, objects: Sequence[tuple[str, bytes]], content_type: str) -> None:
        if len(objects) == 1:
            key, data = objects[0]
            self._put(key, data, content_type)
            return
        futures = [(key, self._pool.submit(self._put, key, data, content_type)) for key, data in objects]
        stored, failure = [], None
        for key, future in futures:
            try:
                future.result()
                stored.append(key)
            except ApiError as exc:
                failure = failure or exc
        if failure is not None:
            self._delete_quietly(stored)
            raise failure

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except ClientError as exc:
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise ApiError(503, "storage_unavailable", f"storing the image failed: {failure_words(exc)}",
                           RETRY_AFTER_STORAGE) from exc

    def _delete_quietly(self, keys: list[str]) -> None:
        """Roll back a partly stored request, so no object outlives a failed request (lifecycle expiry is the
        backstop if this fails too)."""
        for key in keys:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except (BotoCoreError, ClientError) as exc:
                log.warning("could not roll back %s: %s", key, exc)


def storage_error(exc: ClientError, doing: str = "storing the image") -> ApiError:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in ("AccessDenied", "NoSuchBucket", "AllAccessDisabled", "InvalidAccessKeyId") or code.startswith("KMS"):
        return ApiError(500, "misconfigured", f"the bucket refused {doing} ({code}): deployment error")
    return ApiError(503, "storage_unavailable", f"{doing} failed ({code or 'unknown error'})",
                    RETRY_AFTER_STORAGE)


class S3JobStore:
    """JobStore (model_api.jobs) on the deployment's bucket under `prefix` (stacks/image_bucket.py grants exactly
    this layout). A finished job is one GET (result.json). Before that, existence is asked with ListObjectsV2: the
    role's s3:ListBucket is limited to the job prefix (a condition GetObject requests cannot satisfy), and without
    it S3 answers a missing key with 403, not 404 (S3 API reference, GetObject: "If you don't have the s3:ListBucket
    permission, Amazon S3 returns an HTTP status code 403"). So the one GET of result.json reads 403 and 404 alike as
    "not there yet", and the list call that follows tells a missing job from a denied one."""

    def __init__(self, client, bucket: str, prefix: str = "jobs/"):
        self._client = client  # or a Deferred of it
        self.bucket = bucket
        self.prefix = prefix

    @property
    def client(self):
        return _resolved(self._client)

    def key(self, job_id: str, name: str) -> str:
        return f"{self.prefix}{job_id}/{name}"

    def expected(self, job_id: str, model: str) -> tuple[str, str]:
        """SageMaker names an outcome after the inference id unless told otherwise (InvokeEndpointAsync Filename:
        "If not specified, Amazon SageMaker AI generates a filename based on the inference ID")."""
        return (f"s3://{self.bucket}/{self.prefix}output/{model}/{job_id}",
                f"s3://{self.bucket}/{self.prefix}failures/{model}/{job_id}")

    def put_input(self, record, body: bytes, content_type: str) -> str:
        key = self.key(record.job_id, f"input-{record.model}.json")
        self._put(key, body, content_type, {"job": record.to_json()})
        return f"s3://{self.bucket}/{key}"

    def delete_input(self, job_id: str, model: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(job_id, f"input-{model}.json"))
        except (BotoCoreError, ClientError) as exc:  # lifecycle expiry removes it later
            log.warning("could not remove the input of job %s: %s", job_id, exc)

    def put_json(self, job_id: str, name: str, data: bytes) -> None:
        self._put(self.key(job_id, name), data, "application/json")

    def result(self, job_id: str) -> Optional[bytes]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(job_id, "result.json"))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "AccessDenied", "403", "404"):
                return None  # not there yet (403 without s3:ListBucket); the list call after this tells the rest
            raise storage_error(exc, "reading the job") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def files(self, job_id: str) -> list[str]:
        folder = self.key(job_id, "")
        return [key[len(folder):] for key in self._list(folder, 10)]

    def record(self, job_id: str, model: str) -> JobRecord:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(job_id, f"input-{model}.json"))
        except ClientError as exc:
            raise storage_error(exc, "reading the job") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return JobRecord.from_json(head["Metadata"]["job"])

    def get_json(self, job_id: str, name: str) -> bytes:
        return self._get(self.key(job_id, name))

    def outcome(self, job_id: str, model: str, locations: Optional[dict] = None) -> tuple[Optional[bytes], bool]:
        output, failure = (locations["output"], locations["failure"]) if locations else self.expected(job_id, model)
        for uri, is_error in ((output, False), (failure, True)):
            if not uri:
                continue
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            if bucket != self.bucket or not key.startswith(self.prefix):
                raise ApiError(500, "misconfigured", "a job's outcome lies outside the job prefix (deployment error)")
            found = self._list(key, 1)
            if found:
                return self._get(found[0]), is_error
        return None, False

    def _list(self, prefix: str, limit: int) -> list[str]:
        try:
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=limit)
        except ClientError as exc:
            raise storage_error(exc, "reading the job") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return [item["Key"] for item in listed.get("Contents", [])]

    def _get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise storage_error(exc, "reading the job") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc

    def _put(self, key: str, data: bytes, content_type: str, metadata: Optional[dict] = None) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                    Metadata=metadata or {})
        except ClientError as exc:
            raise storage_error(exc, "storing the job") from exc
        except BotoCoreError as exc:
            raise ApiError(503, "storage_unavailable", f"storing the job failed: {failure_words(exc)}",
                           RETRY_AFTER_STORAGE) from exc


def _unavailable(exc: BotoCoreError) -> ApiError:
    return ApiError(503, "storage_unavailable", f"reading the job failed: {failure_words(exc)}", RETRY_AFTER_STORAGE)


def failure_words(exc: BotoCoreError) -> str:
    """What went wrong with an AWS call, in words (the request's log line names the exception class: its cause)."""
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError)):
        return "the service could not be reached"
    if isinstance(exc, ReadTimeoutError):
        return "the service did not answer in time"
    if isinstance(exc, (ConnectionClosedError, ResponseStreamingError)):
        return "the connection broke off"
    if isinstance(exc, SSLError):
        return "the secure connection (TLS) to the service failed"
    return "an unexpected error on the way (the request's log line names it)"
