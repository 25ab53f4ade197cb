"""The custom resource that empties the image bucket on stack delete, run against moto S3 on loopback."""

from __future__ import annotations

import importlib.util
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto.server import ThreadedMotoServer

from stacks.image_bucket import EMPTY_BUCKET_CODE


@pytest.fixture(scope="module")
def s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://{host}:{port}")
    server.stop()


@pytest.fixture(scope="module")
def function():
    spec = importlib.util.spec_from_file_location("empty_bucket", EMPTY_BUCKET_CODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Responses:
    """Captures what the function PUTs to CloudFormation's response URL."""

    def __init__(self):
        self.sent = []

    def __call__(self, request, timeout):
        self.sent.append((request.full_url, request.get_method(), json.loads(request.data)))
        return self

    def close(self):
        pass


def event(request_type, bucket):
    return {"RequestType": request_type, "ResponseURL": "https://cloudformation-response.example/abc",
            "StackId": "stack", "RequestId": "req", "LogicalResourceId": "EmptyOnDelete",
            "ResourceProperties": {"BucketName": bucket}}


def make_bucket(s3, versioned=False, count=0):
    name = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=name, Key=f"images/2026/11/21/{i}.png", Body=b"x"),
                      range(count)))
    return name


def test_delete_empties_every_object_across_pages_and_reports_success(s3, function):
    bucket = make_bucket(s3, count=1003)  # more than one page and one DeleteObjects batch
    responses = Responses()
    function.handler(event("Delete", bucket), None, client=s3, opener=responses)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    s3.delete_bucket(Bucket=bucket)  # CloudFormation's next step succeeds: the bucket is empty
    (url, method, body), = responses.sent
    assert (url, method, body["Status"], body["LogicalResourceId"]) == (
        "https://cloudformation-response.example/abc", "PUT", "SUCCESS", "EmptyOnDelete")


def test_versions_and_delete_markers_go_too(s3, function):
    bucket = make_bucket(s3, versioned=True, count=3)
    s3.delete_object(Bucket=bucket, Key="images/2026/11/21/0.png")  # leaves a delete marker
    function.handler(event("Delete", bucket), None, client=s3, opener=Responses())
    listing = s3.list_object_versions(Bucket=bucket)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")


def test_create_and_update_touch_nothing(s3, function):
    bucket = make_bucket(s3, count=2)
    for kind in ("Create", "Update"):
        responses = Responses()
        function.handler(event(kind, bucket), None, client=s3, opener=responses)
        assert responses.sent[0][2]["Status"] == "SUCCESS"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 2


def test_failure_is_reported_to_cloudformation_not_left_hanging(s3, function):
    responses = Responses()
    function.handler(event("Delete", "no-such-bucket-xyz"), None, client=s3, opener=responses)
    body = responses.sent[0][2]
    assert body["Status"] == "FAILED" and "no-such-bucket-xyz" in body["Reason"]
