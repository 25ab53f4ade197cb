"""Local mode end to end: started as a subprocess, driven with real HTTP clients (curl among them)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from local_rig import ROOT, LocalProcess, local_client, request
from PIL import Image

# The shared local mode (conftest.py) allows 64 px images, so the tiny model answers in milliseconds.
SMALL = {"width": 64, "height": 64, "steps": 1}


def download_png(url: str) -> tuple[int, int]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"] == "image/png"
        data = response.read()
    Image.open(io.BytesIO(data)).verify()
    return Image.open(io.BytesIO(data)).size


def test_banner_says_where_and_that_the_model_draws_noise(local):
    banner = local["banner"]
    assert local["api_url"].startswith("http://127.0.0.1:")
    assert f"{local['api_url']}/images" in banner and "test-key" in banner
    assert "RANDOM-WEIGHT" in banner and "curl" in banner


def test_the_readme_curl_returns_a_url_that_downloads_a_png(local, tmp_path):
    result = subprocess.run(
        ["curl", "-s", "-H", "x-api-key: test-key", "-d", '{"prompt":"a cyborg tiger"}', f"{local['api_url']}/images"],
        capture_output=True, text=True, timeout=120, check=True)
    body = json.loads(result.stdout)
    image, = body["images"]
    assert body["prompt"] == "a cyborg tiger"
    target = tmp_path / "tiger.png"
    subprocess.run(["curl", "-s", "-f", "-o", str(target), image["url"]], check=True, timeout=60)
    assert Image.open(target).size == (512, 512)


def test_get_with_a_prompt_works(local):
    status, _, body = request(local, "GET", query="?prompt=a%20cyborg%20tiger&width=256&height=320&steps=1")
    assert status == 200, body
    assert download_png(body["images"][0]["url"]) == (256, 320)


def test_several_images_in_one_request(local):
    status, _, body = request(local, body={"prompt": "p", "num_images": 3, **SMALL})
    assert status == 200, body
    assert [download_png(i["url"]) for i in body["images"]] == [(64, 64)] * 3


@pytest.mark.parametrize("key,status,code,message", [
    (None, 401, "unauthorized", "no API key: send it in the x-api-key header (or as Authorization: Bearer <key>)"),
    ("wrong-key", 403, "forbidden", "no API key, or not this API's: send this deployment's key in the x-api-key "
                                    "header (make deploy prints how to read it; local mode prints it at start)")])
def test_without_the_key_401_with_a_wrong_one_403_in_the_error_shape(local, key, status, code, message):
    # No key at all: the key authorizer's 401 (bearer_keys, the default); a wrong key: API Gateway's own 403.
    got, _, body = request(local, body={"prompt": "p"}, key=key)
    assert (got, body) == (status, {"error": {"code": code, "message": message}})


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "application/x-www-form-urlencoded", "text/plain", None])
def test_every_client_gets_the_message_that_names_the_problem(local, content_type):
    # Real clients send application/json, curl -d sends a form type: the same detailed 400 for all of them.
    cases = [
        ({"prompt": "", "width": 500}, "prompt must not be empty; width must be a multiple of 8 (got 500)"),
        ({"prompt": "p", "steps": 99}, "steps must be at most 50 (got 99)"),
        ({"nothing": 1}, 'prompt is required; unknown field "nothing" in body (allowed: guidance_scale, height, '
                         "negative_prompt, num_images, prompt, seed, steps, width)"),
        (b'{"prompt": "", "prompt": "x"}', 'request body is not valid JSON: the key "prompt" appears twice in one '
                                           "object"),
        (b"prompt=a+cyborg+tiger", 'request body must be JSON (Content-Type: application/json), such as {"prompt": '),
        (b'{"prompt": "\\ud800"}', "prompt is not valid text: it holds an unpaired UTF-16 surrogate"),
        ({"prompt": "\u200b\u2060 "}, "prompt must not be blank"),
    ]
    for bad, message in cases:
        status, _, body = request(local, body=bad, content_type=content_type)
        assert status == 400 and body["error"]["code"] == "invalid_request", (bad, body)
        assert body["error"]["message"].startswith(message), (bad, body)
    status, _, body = request(local, "GET", query="?prompt=")
    assert status == 400 and body["error"]["message"] == "prompt must not be empty"


@pytest.mark.parametrize("query", ["?prompt=p&steps=2_0", "?prompt=p&steps=%EF%BC%92", "?prompt=p&steps=+2",
                                   "?prompt=p&guidance_scale=1_0", "?prompt=p&width=%20256"])
def test_query_numbers_are_plain_ascii_digits(local, query):
    status, _, body = request(local, "GET", query=query)
    assert status == 400 and "in plain digits" in body["error"]["message"], body


def test_missing_prompt_query_and_unknown_routes(local):
    status, _, body = request(local, "GET", query="?width=256")
    assert status == 400 and body["error"] == {"code": "invalid_request", "message": "prompt is required"}
    # With the key: what exists, as the deployed fallback function says it (404 naming the routes; 405 and Allow).
    status, _, body = request(local, "POST", body={"prompt": "p"}, path="/videos")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert body["error"]["message"].startswith("no route POST /videos; this API has GET /endpoint, GET /images, ")
    status, headers, body = request(local, "DELETE", path="/images")
    assert (status, headers["Allow"]) == (405, "GET, POST") and body["error"] == {
        "code": "method_not_allowed", "message": "DELETE is not allowed on /images; it takes GET or POST"}


def test_the_stage_prefix_of_the_deployed_url_works_too(local):
    status, _, body = request(local, body={"prompt": "p", **SMALL}, path="/v1/images")
    assert status == 200, body


def test_the_local_endpoint_speaks_the_container_contract(local):
    with urllib.request.urlopen(f"{local['endpoint_url']}/ping", timeout=10) as response:
        assert response.status == 200
    payload = json.dumps({"inputs": "p", "parameters": {"width": 64, "height": 64, "num_inference_steps": 1}})
    headers = {"Content-Type": "application/json", "Accept": "image/png"}
    req = urllib.request.Request(f"{local['endpoint_url']}/invocations", data=payload.encode(), method="POST",
                                 headers={**headers, "Authorization": f"Bearer {local['endpoint_token']}"})
    with urllib.request.urlopen(req, timeout=60) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(response.read())).size == (64, 64)


@pytest.mark.parametrize("headers, status, error_type", [
    ({"Content-Type": "application/json"}, 403, "MissingAuthenticationTokenException"),  # any page could post
    ({"Content-Type": "application/json", "Authorization": "Bearer guessed"}, 403, "AccessDeniedException"),
    ({"Content-Type": "text/plain", "Authorization": "<token>"}, 415, "UnsupportedMediaType"),  # a form's type
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "UnsupportedMediaType"),
    ({"Content-Type": "application/json", "Authorization": "<token>", "Host": "attacker.example:8002"}, 400,
     "ValidationError"),  # DNS rebinding: a page's own name pointed at 127.0.0.1
])
def test_the_container_contract_takes_only_this_runs_callers(local, headers, status, error_type):
    headers = {name: f"Bearer {local['endpoint_token']}" if value == "<token>" else value
               for name, value in headers.items()}
    req = urllib.request.Request(f"{local['endpoint_url']}/invocations", data=b'{"inputs": "p"}', method="POST",
                                 headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == status
    assert refused.value.headers["x-amzn-ErrorType"].split(":")[0] == error_type


def test_the_local_endpoint_answers_boto3_like_sagemaker(local):
    from botocore.exceptions import ClientError

    runtime = local_client(local, "sagemaker-runtime")
    payload = json.dumps({"inputs": "p", "parameters": {"width": 64, "height": 64, "num_inference_steps": 1}})
    response = runtime.invoke_endpoint(EndpointName=local["endpoints"]["stable-diffusion"], Body=payload,
                                       ContentType="application/json", Accept="image/png")
    assert response["ContentType"] == "image/png" and response["Body"].read().startswith(b"\x89PNG")
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=local["endpoints"]["stable-diffusion"], Body=payload.replace("64", "63"),
                                ContentType="application/json", Accept="image/png")
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert caught.value.response["OriginalStatusCode"] == 400
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="other", Body=payload, ContentType="application/json")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_the_local_container_has_the_deployed_containers_bounds(local):
    """The stack puts the kind's bounds in the container's environment (SD_MAX_*, the request deadline): local mode
    gives its container the same, so the inference code refuses what the deployed one refuses, past the API's own
    check (here sent to the endpoint directly: 1024 px is within the code's default, over the deployment's)."""
    from botocore.exceptions import ClientError

    from deployment.settings import load_settings
    from local.__main__ import container_environment

    settings = load_settings([])
    model = settings.model("stable-diffusion")
    assert container_environment(model, settings, 900) == {
        "SD_MAX_SIZE": str(settings.max_size), "SD_MAX_STEPS": str(settings.max_steps),
        "SD_MAX_IMAGES": str(settings.max_images), "REQUEST_DEADLINE_SECONDS": "901"}
    runtime = local_client(local, "sagemaker-runtime")
    payload = json.dumps({"inputs": "p", "parameters": {"width": 1024, "height": 64, "num_inference_steps": 1}})
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=local["endpoints"]["stable-diffusion"], Body=payload,
                                ContentType="application/json", Accept="image/png")
    assert caught.value.response["OriginalStatusCode"] == 400
    assert f"width must be an integer from 64 to {settings.max_size}" in caught.value.response["OriginalMessage"]


def test_100_concurrent_requests_all_succeed_with_distinct_keys(local):
    def one(i):
        return request(local, body={"prompt": f"tiger {i}", "seed": i, **SMALL})

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(one, range(100)))
    assert [status for status, _, _ in results] == [200] * 100, [b for s, _, b in results if s != 200][:3]
    keys = [body["images"][0]["key"] for _, _, body in results]
    assert len(set(keys)) == 100
    with ThreadPoolExecutor(max_workers=16) as pool:
        sizes = list(pool.map(lambda body: download_png(body["images"][0]["url"]), [b for _, _, b in results]))
    assert sizes == [(64, 64)] * 100


def test_a_busy_port_is_a_clear_message_not_a_traceback(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The S3 and endpoint stand-ins take free ports by default: only the API's port is asked for.
        result = subprocess.run([sys.executable, "-m", "local", "--port", str(port), "--cache-dir", str(tmp_path)],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 (API) is already in use (another make local?); pick another: make local " \
           'LOCAL_ARGS="--port 9000" (python -m local --port 9000; 0 picks a free one)' in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_settings_are_reported_like_synth(tmp_path):
    result = subprocess.run([sys.executable, "-m", "local", "-c", "url_ttl_seconds=5", "-c", "max_size=1001"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "url_ttl_seconds must be from 60" in result.stderr and "max_size must be a multiple of 8" in result.stderr


def test_settings_apply_locally(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("settings")
    process = LocalProcess(tmp_path, "-c", "max_images=1", "-c", "url_ttl_seconds=120", "-c", "min_size=64")
    try:
        process.wait_until_serving()
        info = json.loads((tmp_path / "ready.json").read_text())
        status, _, body = request({**info}, body={"prompt": "p", "num_images": 2, **SMALL}, key=info["api_key"])
        assert status == 400  # the gateway model now caps num_images at 1
        status, _, body = request({**info}, body={"prompt": "p", **SMALL}, key=info["api_key"])
        assert status == 200 and "X-Amz-Expires=120" in body["images"][0]["url"]
    finally:
        assert process.stop() == 0, "".join(process.stderr[-20:])


def test_make_smoke_passes_against_local_mode(local):
    """The command a user runs after deploying, run against local mode: every route, images downloaded."""
    from ops import smoke

    out = io.StringIO()
    assert smoke.main(["--url", local["api_url"], "--key", "test-key"], out=out) == 0, out.getvalue()
    text = out.getvalue()
    for row in ("GET /endpoint", "POST /images ", "GET /images ", "POST /models/stable-diffusion (invalid body)",
                "GET /models/stable-diffusion (no key)", "GET /no-such-route",
                "DELETE /models/stable-diffusion (no such method)"):
        assert row in text, row
    assert "FAIL" not in text and "checks fine" in text


def test_make_smoke_fails_loudly_on_a_wrong_key(local):
    from ops import smoke

    out = io.StringIO()
    assert smoke.main(["--url", local["api_url"], "--key", "wrong"], out=out) == 1
    assert "FAIL" in out.getvalue() and "1 FAILED" in out.getvalue()


def test_every_error_row_local_mode_can_produce_comes_back_as_the_readme_says(local):
    from local_rig import error_rows

    rows = error_rows(local_only=True)
    produced = {}
    status, _, body = request(local, body={"prompt": ""})
    produced[(status, body["error"]["code"])] = "Lambda"
    status, _, body = request(local, body={"prompt": "p", "width": 768, "height": 768, "steps": 50, "num_images": 4})
    produced[(status, body["error"]["code"])] = "Lambda"
    status, _, body = request(local, body={"prompt": "p"}, key=None)
    produced[(status, body["error"]["code"])] = "API Gateway"
    status, _, body = request(local, body={"prompt": "p"}, key="wrong")
    produced[(status, body["error"]["code"])] = "API Gateway"
    status, _, body = request(local, body={"model": "dall-e-3", "prompt": "p"}, path="/v1/images/generations")
    produced[(status, body["error"]["code"])] = "Lambda"
    status, _, body = request(local, body={"prompt": "p"}, headers={"Accept": "image/jpeg"})
    produced[(status, body["error"]["code"])] = "Lambda"
    status, _, body = request(local, body={"prompt": "p"}, path="/videos")
    produced[(status, body["error"]["code"])] = "Lambda"
    status, _, body = request(local, "DELETE", path="/images")
    produced[(status, body["error"]["code"])] = "Lambda"
    status, _, body = request(local, body={"prompt": "p" * 40_000})
    produced[(status, body["error"]["code"])] = "Lambda"
    assert produced == {(400, "invalid_request"): "Lambda", (400, "request_too_heavy"): "Lambda",
                        (401, "unauthorized"): "API Gateway", (403, "forbidden"): "API Gateway",
                        (404, "model_not_found"): "Lambda", (406, "not_acceptable"): "Lambda",
                        (404, "not_found"): "Lambda", (405, "method_not_allowed"): "Lambda",
                        (413, "request_too_large"): "Lambda"}
    for row, who in produced.items():
        assert rows[row] == who, row
    # The rest of the rows local mode can produce come from the text models (test_local_text_models.py), the async
    # jobs (test_local_async_jobs.py), the streaming models (test_local_streaming.py; a stream past
    # stream_timeout_seconds, 30 s at the least, in tests/lambda/test_streaming.py), its HTTP server
    # (test_local_http_framing.py, test_local_gateway.py, test_http_guard.py) and a model that fails or takes longer
    # than --timeout (the handler's own mapping, tests/lambda/test_handler.py, which local mode runs unchanged).
    assert set(rows) - set(produced) == {
        (400, "model_rejected_input"), (503, "endpoint_unavailable"), (400, "streaming_off"),
        (504, "stream_timeout"), (404, "job_not_found"),
        (400, "bad_request"), (408, "request_timeout"), (411, "length_required"), (414, "uri_too_long"),
        (431, "headers_too_large"), (503, "busy"), (503, "starting"), (505, "http_version_not_supported"),
        (502, "integration_failure"), (502, "model_error"), (502, "bad_model_response"),
        (502, "model_connection_lost"), (502, "model_unavailable"), (504, "model_timeout")}


def test_a_run_that_fails_on_settings_leaves_nothing_behind_and_says_why(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = subprocess.run([sys.executable, "-m", "local", "-c", "instance_type=ml.zz9.xlarge", "--port", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "TMPDIR": str(temp)})
    assert result.returncode == 2 and "unknown instance family 'zz9'" in result.stderr
    assert "Traceback" not in result.stderr and list(temp.iterdir()) == []


@pytest.mark.parametrize("port, message", [("70000", "port 70000 is not a port number (0-65535)"),
                                           ("http", "argument --port: invalid int value: 'http'")])
def test_an_invalid_port_gets_a_message_not_a_traceback(tmp_path, port, message):
    result = subprocess.run([sys.executable, "-m", "local", "--port", port], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_the_banner_says_how_long_the_default_request_takes_here_and_requests_log_their_latency(local):
    assert "on this machine: 512x512, 30 steps ≈" in local["banner"] and "s per image" in local["banner"]
    status, headers, _ = request(local, body={"prompt": "a private timing prompt", **SMALL})
    assert status == 200
    request_id = headers["X-Request-Id"]
    # The handler's line as Lambda's JSON log format writes it to CloudWatch: record, latencies and EMF metrics, in
    # the log file (the console keeps the short line: no JSON there without --verbose).
    process = local["process"]
    process.wait_for_stderr(lambda text: text.startswith("POST /images -> 200 ("))
    line = json.loads(next(text for text in process.log_text().splitlines() if request_id in text))
    assert (line["level"], line["logger"], line["route"], line["status"]) == ("INFO", "model_api", "/images", 200)
    assert line["Latency"] == line["latency_ms"] and line["Images"] == 1 and line["ModelLatency"] > 0
    assert {d["Namespace"] for d in line["_aws"]["CloudWatchMetrics"]} == {"SageMakerModelApi/SageMakerModelApi"}
    assert "private timing prompt" not in "".join(process.stderr + process.stdout) + process.log_text()
    assert not any(text.startswith("{") for text in process.stderr), process.stderr[-3:]
    assert f"Each request's full log line (JSON, as CloudWatch has it): {process.log_file} (--verbose prints them " \
           "here too)" in local["banner"]


def test_the_openapi_document_is_served_keyless_with_the_deployed_bytes(local):
    import urllib.request

    from local_rig import SETTINGS

    from deployment.settings import load_settings

    with urllib.request.urlopen(f"{local['api_url']}/openapi.json", timeout=30) as response:
        body, content_type = response.read(), response.headers["Content-Type"]
    settings = load_settings([SETTINGS[i + 1] for i in range(0, len(SETTINGS), 2)])
    assert content_type == "application/json" and body.decode() == settings.openapi_json()
    assert "/images" in json.loads(body)["paths"]


def test_answers_match_the_schemas_the_openapi_document_gives_them(local):
    """The document cannot drift from the answers: each 200 validates against its operation's response schema."""
    import urllib.request

    from jsonschema import Draft202012Validator

    with urllib.request.urlopen(f"{local['api_url']}/openapi.json", timeout=30) as response:
        document = json.loads(response.read())

    def check(method, path, body=None):
        status, _, answer = request(local, method, body=body, path=path)
        assert status == 200, answer
        schema = document["paths"][path][method.lower()]["responses"]["200"]["content"]["application/json"]["schema"]
        Draft202012Validator({**schema, "components": document["components"]}).validate(answer)
        return answer

    assert check("GET", "/endpoint")["endpoints"]
    assert check("GET", "/v1/models")["data"]
    assert check("POST", "/images", {"prompt": "p", **SMALL})["images"]
    assert check("POST", "/v1/images/generations", {"model": "stable-diffusion", "prompt": "p", "size": "64x64",
                                                    "steps": 1})["data"]
