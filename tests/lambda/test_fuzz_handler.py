"""Several hundred generated requests against the handler (moto S3, an endpoint that always succeeds): a client
error is never a 5xx, every error has the JSON shape, and a rejected request never writes to S3."""

from __future__ import annotations

import base64
import json
import uuid
from types import SimpleNamespace

import boto3
import pytest
from fuzz_coverage import fuzz as run_fuzz
from hypothesis import strategies as st
from lambda_rig import ENDPOINT_NAME, REGION, ImagesForAnyRequest, load_handler

FIELDS = ["prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "seed", "num_images"]
EXAMPLES = 500

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
           | st.text(max_size=50) | st.sampled_from(["", " ", "\u0000", "\ud800", "a" * 5000, "\U0001f600" * 300]))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                                    max_size=3), max_leaves=6)
near_valid = st.fixed_dictionaries(
    {"prompt": st.text(min_size=0, max_size=40) | values},
    optional={name: st.sampled_from([0, 1, 2, 4, 5, 7.5, 256, 512, 520, 768, 776, -1, 2**32, "512", None, True])
              | values for name in FIELDS[1:]},
)
bodies = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    values.map(json.dumps),
    near_valid.map(lambda d: json.dumps(d, ensure_ascii=False)),
    # A field holding a number longer than Python converts (4,300 digits): json.loads raises on it.
    st.tuples(st.sampled_from(["prompt", "seed", "steps", "x"]), st.integers(4301, 6000)).map(
        lambda f: f'{{"prompt": "x", "{f[0]}": {"9" * f[1]}}}'),
    st.integers(1, 200_000).map(lambda n: json.dumps({"prompt": "x" * n})),
)
queries = st.none() | st.dictionaries(st.sampled_from(FIELDS + ["size", "", "prompt[]"]),
                                      st.text(max_size=30), max_size=5)
events = st.fixed_dictionaries({
    "httpMethod": st.sampled_from(["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "", "post"]),
    "resource": st.sampled_from(["/images", "/images", "/models/stable-diffusion", "/endpoint",
                                 "/models/stable-diffusion/endpoint", "/", "/images/../admin", "/IMAGES", ""]),
    "headers": st.none() | st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
    "queryStringParameters": queries,
    "body": bodies,
    "isBase64Encoded": st.booleans(),
}).map(lambda e: {**e, "body": base64.b64encode(e["body"].encode("utf-8", "surrogatepass")).decode()
                  if e["isBase64Encoded"] and e["body"] is not None and len(e["body"]) % 3 else e["body"]})


@pytest.fixture(scope="module")
def fuzz(moto_endpoint):
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    bucket = f"fuzz-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    handler = load_handler({"AWS_REGION": REGION, "ENDPOINT_NAME": ENDPOINT_NAME, "BUCKET_NAME": bucket,
                            "AWS_ENDPOINT_URL_S3": moto_endpoint, "S3_ADDRESSING_STYLE": "path",
                            "MODEL_NAME": "stable-diffusion", "MODEL_KIND": "text-to-image", "MODEL_CATALOG": ""})
    endpoint = ImagesForAnyRequest(handler.endpoint._client)
    count = lambda: s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)  # noqa: E731
    return SimpleNamespace(handler=handler, endpoint=endpoint, count=count)


# Known outcomes always run, on top of the generated ones: 200, 400, 404, 405 and 413.
KNOWN = [
    {"httpMethod": "POST", "resource": "/images", "headers": None, "queryStringParameters": None,
                "body": '{"prompt": "a cyborg tiger", "num_images": 3}', "isBase64Encoded": False},
    {"httpMethod": "GET", "resource": "/images", "headers": None, "queryStringParameters":
                {"prompt": "tiger", "width": "abc"}, "body": None, "isBase64Encoded": False},
    {"httpMethod": "POST", "resource": "/nope", "headers": None, "queryStringParameters": None,
                "body": None, "isBase64Encoded": False},
    {"httpMethod": "PUT", "resource": "/images", "headers": None, "queryStringParameters": None,
                "body": None, "isBase64Encoded": False},
    {"httpMethod": "POST", "resource": "/images", "headers": None, "queryStringParameters": None,
                "body": '{"prompt": "' + "x" * 100000 + '"}', "isBase64Encoded": False},
]


def call(fuzz, event) -> int:
    before = fuzz.count()
    response = fuzz.handler.handle(event, SimpleNamespace(aws_request_id=str(uuid.uuid4())))
    status = response["statusCode"]
    body = json.loads(response["body"])
    assert status < 500, (event, body)
    stored = fuzz.count() - before
    if status >= 400:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert stored == 0, event
    elif "images" in body:
        assert stored == len(body["images"]) >= 1
    else:
        assert stored == 0
    return status


def test_generated_requests_never_5xx_and_never_store_for_rejections(fuzz):
    known, generated = run_fuzz(events, KNOWN, lambda event: call(fuzz, event), EXAMPLES)
    # Success and every kind of rejection, over the known and the generated requests of this test.
    assert {200, 400, 404, 405, 413} <= set(known) | set(generated), sorted(set(known) | set(generated))
