"""The edges of the pipeline that talk to AWS: the SageMaker endpoint and the S3 image store.

Clients are created once per Lambda container with explicit timeouts and retries. Every AWS failure becomes an
ApiError with a deliberate status, so the caller never sees a botocore traceback.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Sequence

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from model_api.errors import ApiError

log = logging.getLogger("model_api")

# Seconds to wait before retrying, sent as Retry-After.
RETRY_AFTER_THROTTLED = 2
RETRY_AFTER_UNAVAILABLE = 30
RETRY_AFTER_STORAGE = 1
# SageMaker real-time responses are at most 6 MB; a longer body is not something to hold in memory and parse.
MAX_MODEL_RESPONSE_BYTES = 6 * 1024 * 1024


def sagemaker_runtime_client(env: Mapping[str, str]):
    """One attempt only: an invocation holds a GPU for seconds and the read timeout is sized so that exactly one fits
    in the Lambda's time; throttling is answered with 429 + Retry-After so the caller retries, not us."""
    return boto3.client(
        "sagemaker-runtime",
        region_name=env.get("AWS_REGION"),
        config=Config(
            connect_timeout=float(env.get("INVOKE_CONNECT_TIMEOUT_SECONDS", "2")),
            read_timeout=float(env.get("INVOKE_READ_TIMEOUT_SECONDS", "22")),
            retries={"mode": "standard", "total_max_attempts": 1},
            tcp_keepalive=True,
        ),
    )


def s3_client(env: Mapping[str, str]):
    """SigV4 on the regional virtual-hosted endpoint (boto3's default can presign SigV2 on the global host, which
    fails outside us-east-1). Local mode sets S3_ADDRESSING_STYLE=path for its loopback S3."""
    return boto3.client(
        "s3",
        region_name=env.get("AWS_REGION"),
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


class SageMakerEndpoint:
    """Endpoint (model_api.images) backed by InvokeEndpoint on one endpoint."""

    def __init__(self, client, endpoint_name: str):
        self._client = client
        self.endpoint_name = endpoint_name

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name, Body=body, ContentType=content_type, Accept=accept
            )
            body = response["Body"].read(MAX_MODEL_RESPONSE_BYTES + 1)
            if len(body) > MAX_MODEL_RESPONSE_BYTES:
                raise ApiError(502, "bad_model_response", "the model's answer is over the 6 MB real-time limit")
            return body, response.get("ContentType", "")
        except ClientError as exc:
            raise invoke_error(exc, self.endpoint_name) from exc
        except ReadTimeoutError as exc:
            raise ApiError(504, "model_timeout", "the model did not answer in time; try fewer steps, fewer images "
                                                 "or a smaller size") from exc
        except (ConnectTimeoutError, EndpointConnectionError) as exc:
            raise ApiError(503, "endpoint_unreachable", "the SageMaker runtime could not be reached",
                           RETRY_AFTER_UNAVAILABLE) from exc
        except (ConnectionClosedError, ResponseStreamingError) as exc:
            raise ApiError(502, "model_connection_lost", "the connection to the model broke off mid-response") from exc
        except BotoCoreError as exc:
            raise ApiError(502, "model_unavailable", f"invoking the model failed: {type(exc).__name__}") from exc


def invoke_error(exc: ClientError, endpoint_name: str) -> ApiError:
    """The status the caller gets for each InvokeEndpoint error code."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = (error.get("Message") or "")[:300]
    if code == "ModelError":
        original = exc.response.get("OriginalStatusCode")
        detail = (exc.response.get("OriginalMessage") or message)[:300]
        status = f" (container status {original})" if original else ""
        return ApiError(502, "model_error", f"the model failed{status}: {detail}")
    if code == "ThrottlingException":
        return ApiError(429, "throttled", "the model endpoint is busy; retry later", RETRY_AFTER_THROTTLED)
    if code in ("ModelNotReadyException", "ServiceUnavailable"):
        return ApiError(503, "endpoint_unavailable", "the model endpoint is not ready; retry later",
                        RETRY_AFTER_UNAVAILABLE)
    if code == "ValidationException" and _means_endpoint_missing(message):
        return ApiError(503, "endpoint_unavailable", f"endpoint {endpoint_name} is missing or not in service",
                        RETRY_AFTER_UNAVAILABLE)
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        return ApiError(500, "misconfigured", "this API is not allowed to invoke its endpoint (deployment error)")
    return ApiError(502, "model_unavailable", f"invoking the model failed: {code or 'unknown error'}")


def _means_endpoint_missing(message: str) -> bool:
    lowered = message.lower()
    return "not found" in lowered or "inservice" in lowered or "in service" in lowered or "status" in lowered


class S3ImageStore:
    """ImageStore (model_api.images) on one bucket."""

    def __init__(self, client, bucket: str, max_workers: int = 8):
        self._client = client
        self.bucket = bucket
        # Created once: uploads of a multi-image request overlap instead of queueing.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s3-put")

    def presign(self, key: str, ttl_seconds: int) -> str:
        try:
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_seconds
            )
        except (BotoCoreError, ClientError) as exc:
            raise ApiError(500, "presign_failed", "could not sign the image URL") from exc

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
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except ClientError as exc:
            raise storage_error(exc) from exc
        except BotoCoreError as exc:
            raise ApiError(503, "storage_unavailable", f"storing the image failed: {type(exc).__name__}",
                           RETRY_AFTER_STORAGE) from exc

    def _delete_quietly(self, keys: list[str]) -> None:
        """Roll back a partly stored request, so no object outlives a failed request (lifecycle expiry is the
        backstop if this fails too)."""
        for key in keys:
            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except (BotoCoreError, ClientError) as exc:
                log.warning("could not roll back %s: %s", key, exc)


def storage_error(exc: ClientError) -> ApiError:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in ("AccessDenied", "NoSuchBucket", "AllAccessDisabled", "InvalidAccessKeyId") or code.startswith("KMS"):
        return ApiError(500, "misconfigured", f"the image bucket refused the upload ({code}): deployment error")
    return ApiError(503, "storage_unavailable", f"storing the image failed ({code or 'unknown error'})",
                    RETRY_AFTER_STORAGE)
