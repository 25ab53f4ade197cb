"""Local mode with models hosted async: POST answers 202 at once, the job runs in the background on the local worker,
GET /jobs/<job_id> (the status_url) reads its state from the local S3 exactly as deployed, and the finished images
download through presigned URLs. Beside them, two models shared on one endpoint as inference components answer as
realtime models do, each through its own component."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from local_rig import LocalProcess, request
from model_api.kinds.text_to_image import is_complete_png

SMALL = {"width": 64, "height": 64, "steps": 1}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("local-async")
    process = LocalProcess(tmp_path, "--api-key", "k", "-c", "models=stable-diffusion,gpt2-cpu,minilm-embeddings,gpt2-tgi",
                           "-c", "min_size=64", "-c", "stable-diffusion.hosting=async", "-c", "gpt2-cpu.hosting=async",
                           "-c", "gpt2-cpu.max_instances=2", "-c", "minilm-embeddings.hosting=shared",
                           "-c", "gpt2-tgi.hosting=shared", "-c", "minilm-embeddings.instance_type=ml.g5.xlarge",
                           "-c", "shared_instances=2", "-c", "gpt2-tgi.max_instances=3")
    banner = process.wait_until_serving()
    info = json.loads((tmp_path / "ready.json").read_text())
    info.update(banner=banner, api_key="k")
    yield info
    assert process.stop() == 0, "".join(process.stderr[-20:])
    assert "Traceback" not in "".join(process.stderr)


def get(url: str, key: str = "k"):
    req = urllib.request.Request(url, headers={"x-api-key": key})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(url: str, deadline_seconds: float = 60) -> dict:
    """Poll a job until it leaves "queued" (a condition, not a timing: the deadline only bounds a broken run)."""
    end = time.monotonic() + deadline_seconds
    while True:
        status, body = get(url)
        assert status == 200, body
        if body["status"] != "queued" or time.monotonic() > end:
            return body
        time.sleep(0.05)


def test_banner_says_jobs_run_in_the_background(local):
    assert "hosted as async jobs on 0-1 x ml.g5.xlarge (scaled on the backlog) on AWS" in local["banner"]
    assert "GET /jobs/{job_id}" in local["banner"]


def test_an_image_job_is_submitted_polled_and_downloaded(local):
    status, _, body = request(local, body={"prompt": "a tiger", "num_images": 2, "seed": 5, **SMALL}, key="k")
    assert status == 202, body
    assert body["status"] == "queued" and body["status_url"] == f"{local['api_url']}/v1/jobs/{body['job_id']}"
    done = wait_for(body["status_url"])
    assert done["status"] == "done", done
    assert done["seed"] == 5 and len(done["images"]) == 2
    pngs = []
    for image in done["images"]:
        assert body["job_id"] in image["key"]
        with urllib.request.urlopen(image["url"], timeout=30) as answer:
            pngs.append(answer.read())
    assert all(is_complete_png(p) for p in pngs) and pngs[0] != pngs[1]
    # The same images on the next poll, under the same keys (stored once).
    assert [i["key"] for i in wait_for(body["status_url"])["images"]] == [i["key"] for i in done["images"]]


def test_a_text_job_answers_the_synchronous_body_on_its_model_route(local):
    status, _, body = request(local, body={"inputs": "Once upon a time", "parameters": {"max_new_tokens": 3}},
                              key="k", path="/models/gpt2-cpu/jobs")
    assert status == 202, body
    done = wait_for(f"{local['api_url']}/models/gpt2-cpu/jobs/{body['job_id']}")
    assert done["status"] == "done" and isinstance(done["generated_text"], str)
    assert done["request_id"] == body["request_id"]


def test_invalid_requests_are_refused_at_once_and_unknown_jobs_are_404(local):
    status, _, body = request(local, body={"prompt": "", **SMALL}, key="k")
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = get(f"{local['api_url']}/jobs/{'0' * 32}")
    assert status == 404 and body["error"]["code"] == "job_not_found"
    status, body = get(f"{local['api_url']}/jobs/{'0' * 32}", key="wrong")
    assert status == 403


def test_make_smoke_submits_and_polls_each_async_model(local):
    import io

    from ops import smoke

    out = io.StringIO()
    assert smoke.main(["--url", local["api_url"], "--key", "k", "--job-wait", "60"], out=out) == 0, out.getvalue()
    text = out.getvalue()
    for row in ("POST /images ", "POST /models/stable-diffusion/jobs", "GET /jobs/<stable-diffusion job>",
                "GET /jobs/<gpt2-cpu job>", "GET /jobs/<unknown id>"):
        assert row in text, row
    assert "FAIL" not in text


def test_shared_models_answer_through_their_own_components(local):
    assert "hosted as inference component of a shared endpoint (1-3 copies, 1024 MB each) on AWS" in local["banner"]
    status, _, body = request(local, body={"inputs": ["a cyborg tiger", "a robot cat"]}, key="k", path="/embeddings")
    assert status == 200 and body["dimensions"] == 384, body
    status, _, body = request(local, body={"inputs": "Once upon a time", "parameters": {"max_new_tokens": 3}},
                              key="k", path="/models/gpt2-tgi")
    assert status == 200 and isinstance(body["generated_text"], str), body
    status, catalog = get(f"{local['api_url']}/endpoint")
    shared = {m["name"]: m for m in catalog["endpoints"] if m["hosting"] == "shared"}
    assert {m["endpoint_name"] for m in shared.values()} == {"sagemakermodelapi-shared"}
    assert shared["gpt2-tgi"]["inference_component"] == "sagemakermodelapi-gpt2-tgi"
