"""The async edges on their own: S3JobStore and InvokeEndpointAsync against stub clients that record each call and
fail on demand, for the failures moto cannot stage (a throttled read, an unreachable runtime)."""

from __future__ import annotations

import io
import logging

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError, SSLError
from model_api.aws import S3JobStore, SageMakerEndpoint, storage_error
from model_api.errors import ApiError


class StubS3:
    def __init__(self, fail=None, contents=()):
        self.calls, self.fail, self.contents = [], fail, list(contents)

    def _call(self, name, **kwargs):
        self.calls.append((name, kwargs))
        if self.fail is not None:
            raise self.fail

    def list_objects_v2(self, **kwargs):
        self._call("list_objects_v2", **kwargs)
        return {"Contents": [{"Key": k} for k in self.contents[:kwargs.get("MaxKeys", 1000)]]}

    def get_object(self, **kwargs):
        self._call("get_object", **kwargs)
        return {"Body": io.BytesIO(b"{}")}

    def head_object(self, **kwargs):
        self._call("head_object", **kwargs)

    def delete_object(self, **kwargs):
        self._call("delete_object", **kwargs)


def client_error(code, operation="GetObject"):
    return ClientError({"Error": {"Code": code, "Message": "m"}}, operation)


def test_listing_a_job_is_bounded_to_what_it_needs():
    s3 = StubS3(contents=[f"jobs/{'a' * 32}/f{i}" for i in range(30)])
    store = S3JobStore(s3, "bucket")
    assert len(store.files("a" * 32)) == 10
    assert s3.calls == [("list_objects_v2", {"Bucket": "bucket", "Prefix": f"jobs/{'a' * 32}/", "MaxKeys": 10})]


@pytest.mark.parametrize("read", [lambda store: store.result("a" * 32), lambda store: store.record("a" * 32, "m"),
                                  lambda store: store.files("a" * 32)])
def test_a_job_read_that_s3_refuses_says_what_failed(read):
    with pytest.raises(ApiError) as caught:
        read(S3JobStore(StubS3(fail=client_error("SlowDown")), "bucket"))
    assert (caught.value.status, caught.value.code) == (503, "storage_unavailable")
    assert caught.value.message == "reading the job failed (SlowDown)"


@pytest.mark.parametrize("read", [lambda store: store.result("a" * 32), lambda store: store.record("a" * 32, "m"),
                                  lambda store: store.files("a" * 32)])
def test_a_job_read_that_cannot_reach_s3_is_503_with_a_retry_after(read):
    from model_api.aws import RETRY_AFTER_STORAGE

    with pytest.raises(ApiError) as caught:
        read(S3JobStore(StubS3(fail=EndpointConnectionError(endpoint_url="https://s3")), "bucket"))
    error = caught.value
    assert (error.status, error.code, error.retry_after) == (503, "storage_unavailable", RETRY_AFTER_STORAGE)
    assert error.message == "reading the job failed: the service could not be reached"


def test_a_storage_error_without_a_code_says_so():
    error = storage_error(ClientError({"Error": {}}, "PutObject"), "storing the job")
    assert (error.status, error.message) == (503, "storing the job failed (unknown error)")


def test_an_input_that_cannot_be_removed_is_logged_and_left_to_expire(caplog):
    store = S3JobStore(StubS3(fail=client_error("AccessDenied", "DeleteObject")), "bucket")
    with caplog.at_level(logging.WARNING, logger="model_api"):
        store.delete_input("b" * 32, "sd")  # does not raise: the bucket's lifecycle removes it
    (record,) = [r for r in caplog.records if r.name == "model_api"]
    assert record.getMessage().startswith(f"could not remove the input of job {'b' * 32}: ")


class StubRuntime:
    def __init__(self, error):
        self.error = error

    def invoke_endpoint_async(self, **kwargs):
        raise self.error


@pytest.mark.parametrize("error, status, code, message", [
    (EndpointConnectionError(endpoint_url="https://runtime"), 503, "endpoint_unreachable",
     "the SageMaker runtime could not be reached"),
    (ReadTimeoutError(endpoint_url="https://runtime"), 503, "endpoint_unreachable",
     "the SageMaker runtime could not be reached"),
    (SSLError(endpoint_url="https://runtime", error="bad handshake"), 502, "model_unavailable",
     "queueing the job failed: the secure connection (TLS) to the service failed"),
])
def test_queueing_a_job_that_cannot_reach_sagemaker_is_a_deliberate_status(error, status, code, message):
    endpoint = SageMakerEndpoint(StubRuntime(error), "ep")
    with pytest.raises(ApiError) as caught:
        endpoint.invoke_async("s3://b/jobs/x/input-m.json", "application/json", "image/png", "c" * 32)
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, message)
