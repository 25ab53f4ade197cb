"""Fixtures of the handler tests (helpers in lambda_rig.py)."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import boto3
import pytest
from lambda_rig import ENDPOINT_NAME, REGION, FakeEndpoint, load_handler


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint):
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    name = f"images-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return SimpleNamespace(name=name, client=s3)


@pytest.fixture
def make_rig(bucket, moto_endpoint):
    """A handler loaded with the given environment (on top of an image model's), its fake endpoint and bucket."""

    def _make(**env):
        handler = load_handler({
            "AWS_REGION": REGION,
            "ENDPOINT_NAME": ENDPOINT_NAME,
            "BUCKET_NAME": bucket.name,
            "URL_TTL_SECONDS": "900",
            "AWS_ENDPOINT_URL_S3": moto_endpoint,
            "S3_ADDRESSING_STYLE": "path",
            "MODEL_NAME": "stable-diffusion",
            "MODEL_KIND": "text-to-image",
            "MODEL_PROTOCOL": "toolkit",
            "MODEL_CATALOG": "",
            **env,
        })
        return _rig(handler, bucket)

    return _make


@pytest.fixture
def rig(make_rig):
    return make_rig()


def _rig(handler, bucket):
    endpoint = FakeEndpoint(handler.endpoint._client)

    def call(event):
        response = handler.handle(event, SimpleNamespace(aws_request_id=f"req-{uuid.uuid4().hex[:8]}"))
        response["json"] = json.loads(response["body"])
        return response

    def stored_keys():
        return [o["Key"] for o in bucket.client.list_objects_v2(Bucket=bucket.name).get("Contents", [])]

    return SimpleNamespace(handler=handler, endpoint=endpoint, call=call, bucket=bucket, stored_keys=stored_keys)


