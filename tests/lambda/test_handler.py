"""The Lambda handler end to end on moto S3 (127.0.0.1) with the endpoint faked at the botocore level."""

from __future__ import annotations

import logging
import re
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from lambda_rig import (
    ENDPOINT_NAME,
    IMAGE_MODEL,
    LAMBDA_DIR,
    REGION,
    _Raw,
    api_event,
    load_handler,
    request_lines,
    tiny_png,
)

KEY = re.compile(r"^images/\d{4}/\d{2}/\d{2}/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.png$")


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers["Content-Type"]


def accept(request) -> str:
    value = request["headers"]["Accept"]
    return value.decode() if isinstance(value, bytes) else value


def assert_error(response, status, code, rig=None):
    assert response["statusCode"] == status, response["body"]
    assert response["headers"]["Content-Type"] == "application/json"
    assert set(response["json"]) == {"error"}
    assert set(response["json"]["error"]) == {"code", "message"}
    assert response["json"]["error"]["code"] == code
    assert response["json"]["error"]["message"]
    assert "url" not in response["body"]
    if rig is not None:
        assert rig.stored_keys() == [], "a failed request must store nothing"
    return response["json"]["error"]["message"]


# ------------------------------------------------------------------------------------------------------ success


def test_post_stores_the_png_and_returns_a_presigned_url_that_downloads_it(rig):
    png = tiny_png(16, 16, shade=7)
    rig.endpoint.returns(png)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    response = rig.call(api_event("POST", {"prompt": "a cyborg tiger", "seed": 42}))
    assert response["statusCode"] == 200, response["body"]
    body = response["json"]
    assert body["prompt"] == "a cyborg tiger" and body["seed"] == 42
    image, = body["images"]
    assert KEY.match(image["key"])
    assert rig.stored_keys() == [image["key"]]
    data, content_type = fetch(image["url"])
    assert data == png and content_type == "image/png"
    expires = datetime.strptime(image["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before + timedelta(seconds=899) <= expires <= datetime.now(timezone.utc) + timedelta(seconds=901)
    assert response["headers"]["X-Request-Id"] == body["request_id"]


def test_the_model_is_asked_for_raw_png_with_every_parameter(rig):
    rig.endpoint.returns(tiny_png())
    rig.call(api_event("POST", {"prompt": "p", "negative_prompt": "blurry", "width": 640, "height": 384,
                                "steps": 12, "guidance_scale": 5, "seed": 7, "num_images": 1}))
    request, = rig.endpoint.requests
    assert request["url"].endswith(f"/endpoints/{ENDPOINT_NAME}/invocations")
    assert accept(request) == "image/png"
    assert request["body"] == {"inputs": "p", "parameters": {
        "width": 640, "height": 384, "num_inference_steps": 12, "guidance_scale": 5.0, "seed": 7,
        "num_images_per_prompt": 1, "negative_prompt": "blurry"}}


@pytest.mark.parametrize("negative", ["", " ", "\n\t", "\u200b\u200b", "\u00a0\ufeff"])
def test_a_blank_looking_negative_prompt_is_no_negative_prompt(rig, negative):
    rig.endpoint.returns(tiny_png())
    response = rig.call(api_event("POST", {"prompt": "p", "negative_prompt": negative}))
    assert response["statusCode"] == 200, response["body"]
    assert "negative_prompt" not in rig.endpoint.requests[0]["body"]["parameters"]


def test_defaults_and_a_fresh_seed_are_filled_in(rig):
    rig.endpoint.returns(tiny_png()).returns(tiny_png())
    first = rig.call(api_event("POST", {"prompt": "p"}))["json"]
    second = rig.call(api_event("POST", {"prompt": "p"}))["json"]
    parameters = rig.endpoint.requests[0]["body"]["parameters"]
    assert (parameters["width"], parameters["height"], parameters["num_inference_steps"]) == (512, 512, 30)
    assert parameters["guidance_scale"] == 7.5 and "negative_prompt" not in parameters
    assert parameters["seed"] == first["seed"] and 0 <= first["seed"] < 2**32
    assert first["seed"] != second["seed"]  # 1 in 2**32 chance of a false failure


def test_several_images_come_as_a_png_sequence_and_each_url_downloads_its_own_bytes(rig):
    pngs = [tiny_png(8, 8, shade) for shade in (10, 20, 30)]
    rig.endpoint.returns_png_sequence(pngs)
    response = rig.call(api_event("POST", {"prompt": "three", "num_images": 3}))
    assert response["statusCode"] == 200, response["body"]
    assert accept(rig.endpoint.requests[0]) == "application/x-png-sequence"
    images = response["json"]["images"]
    assert len({i["key"] for i in images}) == 3
    assert sorted(rig.stored_keys()) == sorted(i["key"] for i in images)
    assert [fetch(i["url"])[0] for i in images] == pngs


def test_get_with_a_prompt_query_works_like_post(rig):
    png = tiny_png(8, 8, shade=99)
    rig.endpoint.returns(png)
    response = rig.call(api_event("GET", query={"prompt": "a cyborg tiger", "width": "256", "guidance_scale": "3.5"}))
    assert response["statusCode"] == 200, response["body"]
    parameters = rig.endpoint.requests[0]["body"]["parameters"]
    assert rig.endpoint.requests[0]["body"]["inputs"] == "a cyborg tiger"
    assert parameters["width"] == 256 and parameters["guidance_scale"] == 3.5
    assert fetch(response["json"]["images"][0]["url"])[0] == png


def test_base64_encoded_bodies_are_decoded(rig):
    rig.endpoint.returns(tiny_png())
    response = rig.call(api_event("POST", {"prompt": "encoded"}, base64_body=True))
    assert response["statusCode"] == 200, response["body"]
    assert rig.endpoint.requests[0]["body"]["inputs"] == "encoded"


def test_one_structured_log_line_per_request(rig, caplog):
    rig.endpoint.returns(tiny_png())
    with caplog.at_level(logging.INFO, logger="model_api"):
        ok = rig.call(api_event("POST", {"prompt": "p"}))
        bad = rig.call(api_event("POST", {"prompt": ""}))
    records = request_lines(caplog)
    assert len(records) == 2
    assert records[0]["status"] == 200 and records[0]["images"] == 1 and records[0]["model"] == "stable-diffusion"
    assert records[0]["request_id"] == ok["headers"]["X-Request-Id"]
    assert records[1]["status"] == 400 and records[1]["error_code"] == "invalid_request"
    assert records[1]["request_id"] == bad["headers"]["X-Request-Id"]
    assert "prompt" not in records[0]  # prompts are user data: not logged


# ------------------------------------------------------------------------------------------------------ bad input


BAD_REQUESTS = [
    ({"negative_prompt": "x"}, "prompt is required"),
    ({"prompt": ""}, "prompt must not be empty"),
    ({"prompt": "   \n\t"}, "prompt must not be blank"),
    ({"prompt": 42}, "prompt must be a string"),
    ({"prompt": "p", "width": 500}, "width must be a multiple of 8"),
    ({"prompt": "p", "height": 4096}, "height must be at most 768"),
    ({"prompt": "p", "width": 128}, "width must be at least 256"),
    ({"prompt": "p", "width": "512"}, "width must be an integer"),
    ({"prompt": "p", "width": 512.5}, "width must be an integer"),
    ({"prompt": "p", "steps": 0}, "steps must be at least 1"),
    ({"prompt": "p", "steps": 51}, "steps must be at most 50"),
    ({"prompt": "p", "num_images": 5}, "num_images must be at most 4"),
    ({"prompt": "p", "num_images": True}, "num_images must be an integer"),
    ({"prompt": "p", "guidance_scale": -1}, "guidance_scale must be at least 0"),
    ({"prompt": "p", "seed": -1}, "seed must be at least 0"),
    ({"prompt": "p", "seed": 2**32}, "seed must be at most 4294967295"),
    ({"prompt": "p", "colour": "red"}, 'unknown field "colour"'),
    ({"prompt": "x" * 1001}, "prompt must be at most 1000 characters long"),
    (["a list"], "body must be an object"),
]


@pytest.mark.parametrize("body, message", BAD_REQUESTS, ids=[m for _, m in BAD_REQUESTS])
def test_bad_bodies_get_400_saying_what_is_wrong(rig, body, message):
    response = rig.call(api_event("POST", body))
    assert message in assert_error(response, 400, "invalid_request", rig)
    assert rig.endpoint.requests == []


def test_all_problems_are_reported_at_once(rig):
    response = rig.call(api_event("POST", {"prompt": "", "width": 3, "steps": 99}))
    message = assert_error(response, 400, "invalid_request", rig)
    assert "prompt must not be empty" in message and "width must be at least 256" in message
    assert "width must be a multiple of 8" in message and "steps must be at most 50" in message


@pytest.mark.parametrize("raw, message", [
    (None, "request body is empty"),
    ("", "request body is empty"),
    ("   ", "request body is empty"),
    ("{not json", "request body is not valid JSON"),
    ('{"prompt": NaN}', "request body is not valid JSON"),
    ("prompt=hello", "request body must be JSON (Content-Type: application/json), such as {"),
])
def test_bodies_that_are_not_json_get_400(rig, raw, message):
    event = api_event("POST")
    event["body"] = raw
    assert message in assert_error(rig.call(event), 400, "invalid_request", rig)


def test_bad_base64_gets_400(rig):
    event = api_event("POST")
    event.update(body="%%%not base64", isBase64Encoded=True)
    assert "not valid base64" in assert_error(rig.call(event), 400, "invalid_request", rig)


def test_oversized_bodies_get_413_before_parsing(rig):
    event = api_event("POST", {"prompt": "x" * 100_000})
    assert "the limit is" in assert_error(rig.call(event), 413, "request_too_large", rig)


@pytest.mark.parametrize("query, message", [
    (None, "prompt is required"),
    ({"prompt": ""}, "prompt must not be empty"),
    ({"prompt": "p", "width": "wide"}, "width must be an integer"),
    ({"prompt": "p", "guidance_scale": "nan"}, "guidance_scale must be a number"),
    ({"prompt": "p", "size": "big"}, 'unknown field "size"'),
])
def test_bad_queries_get_400(rig, query, message):
    assert message in assert_error(rig.call(api_event("GET", query=query)), 400, "invalid_request", rig)


def test_other_methods_get_405_and_other_paths_404(rig):
    assert_error(rig.call(api_event("PUT", {"prompt": "p"})), 405, "method_not_allowed", rig)
    assert_error(rig.call(api_event("POST", {"prompt": "p"}, resource="/videos")), 404, "not_found", rig)


# ------------------------------------------------------------------------------------------------------ AWS failures


def model_error(status=500, message="CUDA out of memory"):
    return {"ErrorCode": "INTERNAL_FAILURE_FROM_MODEL", "OriginalStatusCode": status, "OriginalMessage": message,
            "LogStreamArn": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
            "Message": f"Received server error ({status}) from primary with message \"{message}\"."}


ENDPOINT_FAILURES = [
    ("model error", lambda e: e.fails(424, "ModelError", model_error()), 502, "model_error", None),
    ("endpoint missing", lambda e: e.fails(400, "ValidationException", {
        "message": f"Endpoint {ENDPOINT_NAME} of account 123456789012 not found."}), 503, "endpoint_unavailable", "30"),
    ("endpoint not in service", lambda e: e.fails(400, "ValidationException", {
        "message": f"Endpoint {ENDPOINT_NAME} is not in service."}), 503, "endpoint_unavailable", "30"),
    ("endpoint updating", lambda e: e.fails(400, "ValidationException", {
        "message": f"Endpoint {ENDPOINT_NAME} is not InService."}), 503, "endpoint_unavailable", "30"),
    # A shared model scaled to zero copies: InvokeEndpoint answers 400 "... has no capacity ..." (the wording as a
    # third-party deployment report quotes it; the request itself starts a copy).
    ("component scaled to zero", lambda e: e.fails(400, "ValidationException", {
        "message": "Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
                   "in-progress (if configured) or try to increase the capacity by invoking "
                   "UpdateInferenceComponentRuntimeConfig API."}), 503, "endpoint_unavailable", "60"),
    ("other validation error", lambda e: e.fails(400, "ValidationException", {
        "message": "1 validation error detected: Value at 'contentType' failed"}), 502, "model_unavailable", None),
    ("throttled", lambda e: e.fails(400, "ThrottlingException", {"message": "Rate exceeded"}), 429, "throttled", "2"),
    ("not ready", lambda e: e.fails(429, "ModelNotReadyException", {"Message": "not ready"}), 503,
     "endpoint_unavailable", "30"),
    ("service unavailable", lambda e: e.fails(503, "ServiceUnavailable", {"Message": "down"}), 503,
     "endpoint_unavailable", "30"),
    ("internal failure", lambda e: e.fails(500, "InternalFailure", {"Message": "oops"}), 502, "model_unavailable",
     None),
    ("access denied", lambda e: e.fails(400, "AccessDeniedException", {"Message": "no"}), 500, "misconfigured", None),
    ("access denied (S3-style code)", lambda e: e.fails(403, "AccessDenied", {"Message": "no"}), 500, "misconfigured",
     None),
    ("bad credentials", lambda e: e.fails(403, "UnrecognizedClientException", {"Message": "no"}), 500,
     "misconfigured", None),
    ("read timeout", lambda e: e.raises(ReadTimeoutError(endpoint_url="https://runtime")), 504, "model_timeout", None),
    ("connect failure", lambda e: e.raises(EndpointConnectionError(endpoint_url="https://runtime")), 503,
     "endpoint_unreachable", "30"),
    ("connection reset", lambda e: e.raises(ConnectionClosedError(endpoint_url="https://runtime")), 502,
     "model_connection_lost", None),
    ("truncated png", lambda e: e.returns(tiny_png()[:-20]), 502, "bad_model_response", None),
    ("not an image", lambda e: e.returns(b"<html>oops</html>", "text/html"), 502, "bad_model_response", None),
    ("png that is not png", lambda e: e.returns(b"GIF89a" + b"\0" * 100), 502, "bad_model_response", None),
    ("body over 6 MB", lambda e: e.returns(tiny_png()[:-12] + b"\0" * (6 * 1024 * 1024) + tiny_png()[-12:]), 502,
     "bad_model_response", None),
]


@pytest.mark.parametrize("case, arrange, status, code, retry_after", ENDPOINT_FAILURES,
                         ids=[c[0] for c in ENDPOINT_FAILURES])
def test_endpoint_failures_map_to_deliberate_statuses(rig, caplog, case, arrange, status, code, retry_after):
    arrange(rig.endpoint)
    with caplog.at_level(logging.INFO, logger="model_api"):
        response = rig.call(api_event("POST", {"prompt": "p"}))
    assert_error(response, status, code, rig)
    assert response["headers"].get("Retry-After") == retry_after
    # One structured line per request, with the request id the caller sees, the code and the status.
    record, = request_lines(caplog)
    assert record["request_id"] == response["headers"]["X-Request-Id"]
    assert (record["status"], record["error_code"]) == (status, code)


@pytest.mark.parametrize("error, code, message", [
    (ConnectionClosedError(endpoint_url="https://runtime"), "model_connection_lost",
     "the connection to the model broke off mid-response"),
    (SSLError(endpoint_url="https://runtime", error="bad handshake"), "model_unavailable",
     "invoking the model failed: the secure connection (TLS) to the service failed"),
])
def test_transport_failures_say_what_broke(rig, error, code, message):
    rig.endpoint.raises(error)
    assert assert_error(rig.call(api_event("POST", {"prompt": "p"})), 502, code, rig) == message


def test_a_throttled_endpoint_says_it_is_busy(rig):
    rig.endpoint.fails(400, "ThrottlingException", {"message": "Rate exceeded"})
    assert assert_error(rig.call(api_event("POST", {"prompt": "p"})), 429, "throttled", rig) == \
        "the model endpoint is busy; retry later"


def test_an_unreachable_runtime_is_503_and_says_so(rig):
    rig.endpoint.raises(EndpointConnectionError(endpoint_url="https://runtime"))
    response = rig.call(api_event("POST", {"prompt": "p"}))
    assert assert_error(response, 503, "endpoint_unreachable", rig) == "the SageMaker runtime could not be reached"


def test_model_error_message_carries_the_container_status_and_no_internals(rig, caplog):
    said = ("CUDA error: an illegal memory access was encountered\nTraceback (most recent call last):\n  File "
            "\"/opt/conda/lib/python3.11/site-packages/torch/nn/modules/module.py\", line 1553")
    rig.endpoint.fails(424, "ModelError", model_error(500, said))
    with caplog.at_level(logging.WARNING, logger="model_api"):
        message = assert_error(rig.call(api_event("POST", {"prompt": "p"})), 502, "model_error", rig)
    assert message == ("the model failed (container status 500): an error inside the model container (details in "
                       "the function's log, under this request's id)")
    logged, = [r for r in caplog.records if getattr(r, "container_message", None)]
    assert logged.container_message == said  # the whole text, for whoever reads the logs


@pytest.mark.parametrize("words", ["`inputs` tokens + `max_new_tokens` must be <= 1024\n  at /opt/ml/x.py",
                                   "x" * 500])
def test_a_refusal_in_the_containers_words_is_its_first_line_cut_short(rig, words):
    rig.endpoint.fails(424, "ModelError", model_error(422, words))
    message = assert_error(rig.call(api_event("POST", {"prompt": "p"})), 400, "model_rejected_input", rig)
    assert message == "the model refused the input (container status 422): " + words.splitlines()[0][:200]


def test_a_refusal_without_words_gets_the_summary(rig):
    rig.endpoint.fails(424, "ModelError", model_error(422, "   "))
    message = assert_error(rig.call(api_event("POST", {"prompt": "p"})), 400, "model_rejected_input", rig)
    assert message.endswith("an error inside the model container (details in the function's log, under this "
                            "request's id)")


def test_a_refusal_that_shows_internals_is_summarized(rig):
    rig.endpoint.fails(424, "ModelError", model_error(413, 'File "/opt/ml/model/code/inference.py", line 3'))
    message = assert_error(rig.call(api_event("POST", {"prompt": "p"})), 400, "model_rejected_input", rig)
    assert "/opt/ml" not in message and message.endswith("under this request's id)")


@pytest.mark.parametrize("status, words", [(400, "invalid input: width must be a multiple of 8"),
                                           (413, "payload too large"), (422, "`inputs` must have less than 768 tokens")])
def test_a_container_refusing_the_input_is_the_callers_400_with_its_words(rig, status, words):
    rig.endpoint.fails(424, "ModelError", model_error(status, words))
    message = assert_error(rig.call(api_event("POST", {"prompt": "p"})), 400, "model_rejected_input", rig)
    assert f"container status {status}" in message and words in message


def test_a_bare_toolkit_400_is_not_blamed_on_the_caller(rig):
    # The inference toolkit answers 400 for every exception, its own CUDA faults included.
    rig.endpoint.fails(424, "ModelError", model_error(400, "CUDA out of memory. Tried to allocate 2.00 GiB"))
    message = assert_error(rig.call(api_event("POST", {"prompt": "p"})), 502, "model_error", rig)
    assert message == ("the model failed (container status 400): out of accelerator memory: ask for "
                       "less at once (fewer or smaller images, fewer tokens), or retry")


def test_the_marker_is_the_one_the_inference_code_uses():
    from model_api.container_text import INPUT_REFUSED

    for name in ("stable_diffusion", "chat_embeddings"):
        source = (LAMBDA_DIR.parent / "models" / name / "code" / "inference.py").read_text()
        assert f'INVALID_INPUT = "{INPUT_REFUSED}"' in source, name


def test_json_answers_in_the_jumpstart_shape_are_decoded_too(rig):
    pngs = [tiny_png(8, 8, shade) for shade in (1, 2)]
    rig.endpoint.returns_images(pngs)
    response = rig.call(api_event("POST", {"prompt": "two", "num_images": 2}))
    assert response["statusCode"] == 200 and len(rig.stored_keys()) == 2


def test_wrong_image_count_or_bad_json_from_the_model_is_502(rig):
    rig.endpoint.returns_png_sequence([tiny_png()])  # asked for 2
    assert_error(rig.call(api_event("POST", {"prompt": "p", "num_images": 2})), 502, "bad_model_response", rig)
    rig.endpoint.returns_png_sequence([tiny_png(), tiny_png()[:-5]])
    assert_error(rig.call(api_event("POST", {"prompt": "p", "num_images": 2})), 502, "bad_model_response", rig)
    rig.endpoint.returns_images([tiny_png()])  # asked for 2
    assert_error(rig.call(api_event("POST", {"prompt": "p", "num_images": 2})), 502, "bad_model_response", rig)
    rig.endpoint.returns(b'{"generated_images": ["***"]}', "application/json")
    assert_error(rig.call(api_event("POST", {"prompt": "p", "num_images": 2})), 502, "bad_model_response", rig)


def test_missing_bucket_is_a_deployment_error_500(rig):
    rig.endpoint.returns(tiny_png())
    rig.handler.store.bucket = "no-such-bucket-anywhere"
    response = rig.call(api_event("POST", {"prompt": "p"}))
    assert_error(response, 500, "misconfigured", rig)


def _fail_puts(client, should_fail):
    """Answer the PutObject calls for which should_fail(body bytes) is true with S3's 503 SlowDown."""

    def hook(request, **_):
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        if hasattr(request.body, "seek"):
            request.body.seek(0)
        if should_fail(body):
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Raw(body))
        return None

    client.meta.events.register("before-send.s3.PutObject", hook)


def test_s3_outage_is_503_with_retry_after_and_nothing_stored(rig):
    rig.endpoint.returns(tiny_png())
    _fail_puts(rig.handler.store.client, lambda body: True)
    response = rig.call(api_event("POST", {"prompt": "p"}))
    assert_error(response, 503, "storage_unavailable", rig)
    assert response["headers"]["Retry-After"] == "1"


def test_a_partly_stored_request_is_rolled_back(rig, monkeypatch):
    pngs = [tiny_png(8, 8, s) for s in (1, 2, 3)]
    rig.endpoint.returns_png_sequence(pngs)
    client = rig.handler.store.client
    _fail_puts(client, lambda body: body == pngs[1])  # the second image fails on every retry
    stored, deleted = [], []

    def recording(method, log):
        def call(**kwargs):
            result = method(**kwargs)
            log.append(kwargs["Key"])
            return result
        return call

    monkeypatch.setattr(client, "put_object", recording(client.put_object, stored))
    monkeypatch.setattr(client, "delete_object", recording(client.delete_object, deleted))
    response = rig.call(api_event("POST", {"prompt": "p", "num_images": 3}))
    assert_error(response, 503, "storage_unavailable", rig)
    assert len(stored) == 2 and sorted(deleted) == sorted(stored)


def test_a_rollback_that_fails_too_is_logged_with_the_key_and_the_error(rig, monkeypatch, caplog):
    from botocore.exceptions import ClientError

    store = rig.handler.store

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteObject")

    monkeypatch.setattr(store.client, "delete_object", refuse)
    with caplog.at_level(logging.WARNING, logger="model_api"):
        store._delete_quietly(["images/a.png"])
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "could not roll back images/a.png: An error occurred (AccessDenied) when calling the DeleteObject operation: no"]


def test_presign_failure_stores_nothing(rig, monkeypatch):
    from botocore.exceptions import NoCredentialsError

    rig.endpoint.returns(tiny_png())

    def no_credentials(*args, **kwargs):
        raise NoCredentialsError()

    monkeypatch.setattr(rig.handler.store.signing_client, "generate_presigned_url", no_credentials)
    assert_error(rig.call(api_event("POST", {"prompt": "p"})), 500, "presign_failed", rig)


def test_unexpected_bugs_become_500_without_internals(rig, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    from model_api.kinds import text_to_image

    monkeypatch.setattr(text_to_image, "decode_model_images", broken)
    rig.endpoint.returns(tiny_png())
    with caplog.at_level("ERROR", logger="model_api"):
        response = rig.call(api_event("POST", {"prompt": "p"}))
    assert "secret internal detail" not in assert_error(response, 500, "internal_error", rig)
    # The log has the traceback under the request id the caller was told to quote.
    bug = next(r for r in caplog.records if r.exc_info)
    assert bug.getMessage() == f"unhandled error in request {response['headers']['X-Request-Id']}"
    assert "secret internal detail" in caplog.text


# ------------------------------------------------------------------------------------------------------ presigned URLs


def test_clients_have_explicit_timeouts_and_retries():
    handler = load_handler({"AWS_REGION": REGION, "ENDPOINT_NAME": "e", "BUCKET_NAME": "b", **IMAGE_MODEL,
                            "INVOKE_READ_TIMEOUT_SECONDS": "13"})
    runtime = handler.endpoint._client.meta.config
    assert (runtime.read_timeout, runtime.connect_timeout) == (13.0, 2.0)
    assert runtime.retries["total_max_attempts"] == 1
    s3 = handler.store.client.meta.config
    assert (s3.read_timeout, s3.connect_timeout, s3.retries["total_max_attempts"]) == (5, 2, 3)
    assert s3.signature_version == "s3v4"


def test_s3_unreachable_is_503_naming_the_failure_with_retry_after(rig, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    rig.endpoint.returns(tiny_png())

    def unreachable(**kwargs):
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    monkeypatch.setattr(rig.handler.store.client, "put_object", unreachable)
    response = rig.call(api_event("POST", {"prompt": "p"}))
    message = assert_error(response, 503, "storage_unavailable", rig)
    assert message == "storing the image failed: the service could not be reached"
    assert response["headers"]["Retry-After"] == "1"
