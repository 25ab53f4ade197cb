"""The custom resource that empties the image bucket on stack delete, run against moto S3 on loopback."""

from __future__ import annotations

import importlib.util
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto.server import ThreadedMotoServer

from stacks.image_bucket import EMPTY_BUCKET_CODE, EMPTY_ON_DELETE_TAG


def EXISTING(name):
    """A statement of the bucket's own policy, which the emptier must keep (moto's loopback S3 is plain HTTP, so
    the stack's real TLS-only denial would refuse these very tests)."""
    return {"Sid": "AccountReads", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}


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
        self.timeout = timeout
        return self

    def close(self):
        pass


def event(request_type, bucket):
    return {"RequestType": request_type, "ResponseURL": "https://cloudformation-response.example/abc",
            "StackId": "stack", "RequestId": "req", "LogicalResourceId": "EmptyOnDelete",
            "ResourceProperties": {"BucketName": bucket}}


def make_bucket(s3, versioned=False, count=0, tagged=True):
    """A bucket as the stack makes it: tagged for emptying (unless retained) and with a TLS-only policy."""
    name = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    if tagged:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": EMPTY_ON_DELETE_TAG, "Value": "true"}]})
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [EXISTING(name)]}))
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
    # The fields CloudFormation matches a response by (custom resource response objects).
    assert (body["StackId"], body["RequestId"]) == ("stack", "req")


def test_versions_and_delete_markers_go_too(s3, function):
    bucket = make_bucket(s3, versioned=True, count=3)
    s3.delete_object(Bucket=bucket, Key="images/2026/11/21/0.png")  # leaves a delete marker
    function.handler(event("Delete", bucket), None, client=s3, opener=Responses())
    listing = s3.list_object_versions(Bucket=bucket)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")


def test_objects_s3_would_not_delete_fail_the_destroy_with_what_they_are(s3, function, monkeypatch):
    bucket = make_bucket(s3, count=2)
    delete = s3.delete_objects

    def partly(**kwargs):  # S3 answers 200 with the objects it refused listed under Errors
        delete(**kwargs)
        return {"Errors": [{"Key": "images/2026/11/21/0.png", "Code": "AccessDenied", "Message": "Access Denied"}]}

    monkeypatch.setattr(s3, "delete_objects", partly)
    responses = Responses()
    function.handler(event("Delete", bucket), None, client=s3, opener=responses)
    body = responses.sent[0][2]
    assert body["Status"] == "FAILED" and "could not delete 1 objects" in body["Reason"]
    assert "AccessDenied" in body["Reason"]


def test_create_and_update_touch_nothing(s3, function):
    bucket = make_bucket(s3, count=2)
    for kind in ("Create", "Update"):
        responses = Responses()
        function.handler(event(kind, bucket), None, client=s3, opener=responses)
        assert responses.sent[0][2]["Status"] == "SUCCESS"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 2


def test_a_bucket_that_is_already_gone_does_not_fail_the_destroy(s3, function):
    responses = Responses()
    function.handler(event("Delete", "no-such-bucket-xyz"), None, client=s3, opener=responses)
    assert responses.sent[0][2]["Status"] == "SUCCESS"


def test_a_bucket_no_longer_tagged_is_kept_with_its_images(s3, function):
    # Turning retain_bucket on for a deployed stack removes the tag (a bucket update) before CloudFormation deletes
    # this custom resource: the live bucket must keep every image.
    bucket = make_bucket(s3, count=3, tagged=False)
    responses = Responses()
    function.handler(event("Delete", bucket), None, client=s3, opener=responses)
    assert responses.sent[0][2]["Status"] == "SUCCESS"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 3
    assert "DenyUploads" not in s3.get_bucket_policy(Bucket=bucket)["Policy"]


def test_uploads_are_denied_before_emptying_and_the_policy_keeps_its_statements(s3, function):
    bucket = make_bucket(s3, count=2)
    function.handler(event("Delete", bucket), None, client=s3, opener=Responses())
    statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statements[0] == EXISTING(bucket)
    assert statements[1] == {"Sid": "DenyUploadsWhileEmptying", "Effect": "Deny", "Principal": "*",
                             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    # moto evaluates bucket policies: an upload racing the destroy is refused, so the bucket stays empty.
    with pytest.raises(s3.exceptions.ClientError, match="Forbidden|AccessDenied"):
        s3.put_object(Bucket=bucket, Key="images/late.png", Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # Twice (CloudFormation retries a delete): still one denial.
    function.handler(event("Delete", bucket), None, client=s3, opener=Responses())
    assert len(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]) == 2


def test_failure_is_reported_to_cloudformation_not_left_hanging(s3, function, monkeypatch):
    bucket = make_bucket(s3, count=1)

    def broken(**kwargs):
        raise RuntimeError("S3 is having a bad day")

    monkeypatch.setattr(s3, "delete_objects", broken)
    responses = Responses()
    function.handler(event("Delete", bucket), None, client=s3, opener=responses)
    body = responses.sent[0][2]
    assert body["Status"] == "FAILED" and bucket in body["Reason"] and "bad day" in body["Reason"]


def test_a_bucket_without_a_policy_gets_a_valid_one_that_denies_uploads(s3, function):
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": EMPTY_ON_DELETE_TAG, "Value": "true"}]})
    assert function.on_delete(bucket, s3) == {"bucket": bucket, "deleted": 0}
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Version"] == "2012-10-17" and [s["Sid"] for s in policy["Statement"]] == [
        "DenyUploadsWhileEmptying"]


def test_what_delete_reports_kept_or_gone(s3, function):
    kept = make_bucket(s3, count=1, tagged=False)
    assert function.on_delete(kept, s3) == {"bucket": kept, "kept": True}
    assert function.on_delete("no-such-bucket-xyz", s3) == {"bucket": "no-such-bucket-xyz", "already_gone": True}


def test_the_physical_id_is_the_buckets_until_cloudformation_has_one(function):
    responses = Responses()
    function.respond(event("Create", "my-bucket"), "SUCCESS", "ok", responses)
    function.respond({**event("Delete", "my-bucket"), "PhysicalResourceId": "given"}, "SUCCESS", "ok", responses)
    assert [body["PhysicalResourceId"] for _, _, body in responses.sent] == ["empty-my-bucket", "given"]
    assert responses.timeout == 30  # a stuck response URL must not hold the function to its own timeout


@pytest.mark.parametrize("region, partition", [("us-east-1", "aws"), ("cn-north-1", "aws-cn"),
                                                ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")])
def test_the_denial_names_the_buckets_partition(function, region, partition):
    assert function.partition_of(boto3.client("s3", region_name=region)) == partition


def test_no_delete_request_carries_more_than_the_1000_keys_s3_takes(function):
    """DeleteObjects refuses more than 1,000 keys (MalformedXML); a listing page may hold versions and delete markers
    beside each other, so the page is cut to 1,000 whatever it holds."""

    class Client:
        def __init__(self):
            self.pages = [{"Versions": [{"Key": f"v{i}", "VersionId": "1"} for i in range(1000)],
                           "DeleteMarkers": [{"Key": f"m{i}", "VersionId": "2"} for i in range(5)]},
                          {"DeleteMarkers": [{"Key": f"m{i}", "VersionId": "2"} for i in range(5)]}, {}]
            self.batches = []

        def list_object_versions(self, Bucket, MaxKeys):
            assert MaxKeys == 1000
            return self.pages.pop(0)

        def delete_objects(self, Bucket, Delete):
            self.batches.append(len(Delete["Objects"]))
            return {}

    client = Client()
    assert function.empty("bucket", client) == 1005
    assert client.batches == [1000, 5]
