"""Generated HTTP requests against local mode (odd methods, paths, headers, query strings, bodies): a client
error is never a 5xx, every error is the JSON shape, and a rejected request never writes to S3."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
from fuzz_coverage import fuzz as run_fuzz
from hypothesis import strategies as st
from local_rig import LocalProcess, local_client

EXAMPLES = 300
# Limits so tight that any valid request is a 64 px, 1-step image: hundreds of requests stay fast.
TIGHT = ["-c", "min_size=64", "-c", "max_size=64", "-c", "default_size=64", "-c", "max_steps=1",
         "-c", "default_steps=1", "-c", "max_images=2", "-c", "max_prompt_chars=200"]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    process = LocalProcess(tmp_path, "--api-key", "k", *TIGHT)
    process.wait_until_serving()
    info = json.loads((tmp_path / "ready.json").read_text())
    s3 = local_client(info, "s3")
    info["count"] = lambda: s3.list_objects_v2(Bucket="local-images").get("KeyCount", 0)
    yield info
    assert process.stop() == 0, "".join(process.stderr[-20:])


text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
               max_size=40)
paths = st.one_of(
    st.sampled_from(["/images", "/images", "/v1/images", "/images/", "/IMAGES", "/images/../images", "/",
                     "/endpoint", "/models/stable-diffusion", "/models/stable-diffusion/endpoint", "/nope",
                     "/images%00", "/%2e%2e/images", "//images", "/v2/images"]),
    text.map(lambda t: "/" + "".join(c if c.isascii() and c.isalnum() else "%%%02X" % (ord(c) % 256) for c in t)),
)
queries = st.dictionaries(st.sampled_from(["prompt", "width", "steps", "seed", "num_images", "x", "prompt[]"]),
                          text, max_size=4).map(
    lambda q: "&".join(f"{k}={''.join(c if c.isascii() and c.isalnum() else '%%%02X' % (ord(c) % 256) for c in v)}"
                       for k, v in q.items()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=5)
near_valid = st.fixed_dictionaries({"prompt": text | json_values}, optional={
    name: st.sampled_from([0, 1, 2, 3, 64, 72, -1, "64", None, True, 1.5]) | json_values
    for name in ("width", "height", "steps", "seed", "num_images", "guidance_scale", "negative_prompt", "extra")})
bodies = st.one_of(
    st.just(b""), st.binary(max_size=300), text.map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    # A field holding a number longer than Python converts (4,300 digits): json.loads raises on it.
    st.tuples(st.sampled_from(["prompt", "seed", "steps", "x"]), st.integers(4301, 6000)).map(
        lambda f: f'{{"prompt": "x", "{f[0]}": {"9" * f[1]}}}'.encode()),
    st.integers(300, 120_000).map(lambda n: json.dumps({"prompt": "x" * n}).encode()),
)
requests_ = st.fixed_dictionaries({
    "method": st.sampled_from(["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO"]),
    "path": paths,
    "query": queries,
    "key": st.sampled_from(["k", "k", "k", None, "wrong", "K", " k"]),
    "content_type": st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                     "application/x-www-form-urlencoded", None, "application/JSON"]),
    "body": bodies,
})


# Known outcomes always run, on top of the generated ones: a valid POST and GET, a bad key, a bad body, no route.
KNOWN = [
    {"method": "POST", "path": "/images", "query": "", "key": "k", "content_type": "application/json",
              "body": b'{"prompt": "a cyborg tiger", "num_images": 2}'},
    {"method": "GET", "path": "/v1/images", "query": "prompt=tiger&seed=3", "key": "k",
              "content_type": None, "body": b""},
    {"method": "POST", "path": "/images", "query": "", "key": "wrong", "content_type": None, "body": b""},
    {"method": "POST", "path": "/images", "query": "", "key": "k", "content_type": "application/json",
              "body": b'{"prompt": ""}'},
    {"method": "FOO", "path": "/nope", "query": "", "key": "k", "content_type": None, "body": b""},
]


def call(local, req) -> int:
    url = urlsplit(local["api_url"])
    headers = {}
    if req["key"] is not None:
        headers["x-api-key"] = req["key"]
    if req["content_type"]:
        headers["Content-Type"] = req["content_type"]
    target = req["path"] + (f"?{req['query']}" if req["query"] else "")
    before = local["count"]()
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    try:
        connection.request(req["method"], target, body=req["body"] or None, headers=headers)
        response = connection.getresponse()
        status, raw = response.status, response.read()
    finally:
        connection.close()
    assert status < 500, (req, raw[:300])
    stored = local["count"]() - before
    if req["method"] == "HEAD":
        assert raw == b""
        assert stored == 0
        return status
    body = json.loads(raw)
    if status >= 400:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert stored == 0, req
    elif "images" in body:
        assert stored == len(body["images"])
    return status


def test_generated_http_requests(local):
    known, generated = run_fuzz(requests_, KNOWN, lambda req: call(local, req), EXAMPLES)
    # Success and every kind of rejection, over the known and the generated requests of this test.
    assert {200, 400, 403, 404} <= set(known) | set(generated), sorted(set(known) | set(generated))
