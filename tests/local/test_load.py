"""A bounded load test of local mode on loopback: 500 image requests at concurrency 16. Zero errors, zero key
collisions, every URL downloads a distinct image, and for every 5th request (100 of them; each check re-runs the
model, so all 500 would double the test's time) exactly the bytes the model generates for that request."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from local_rig import LocalProcess, request
from model_api.images import ImageRequest, model_request

REQUESTS = 500
CONCURRENCY = 16
TIGHT = ["-c", "min_size=64", "-c", "default_size=64", "-c", "default_steps=1"]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("load")
    process = LocalProcess(tmp_path, "--api-key", "k", *TIGHT)
    process.wait_until_serving()
    yield json.loads((tmp_path / "ready.json").read_text())
    assert process.stop() == 0, "".join(process.stderr[-20:])


def expected_png(local, prompt: str, seed: int) -> bytes:
    """What the model makes for this request, asked directly through the container contract."""
    body, accept = model_request(ImageRequest(prompt, None, 64, 64, 1, 7.5, seed, 1), seed)
    req = urllib.request.Request(f"{local['endpoint_url']}/invocations", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept": accept})
    with urllib.request.urlopen(req, timeout=120) as response:
        return response.read()


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def test_500_requests_at_concurrency_16_lose_nothing(local):
    local = {**local, "api_key": "k"}

    def one(i):
        prompt = f"tiger number {i}"
        status, _, body = request(local, body={"prompt": prompt, "seed": i}, key="k")
        return i, prompt, status, body

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, range(REQUESTS)))
    failures = [(i, status, body) for i, _, status, body in results if status != 200]
    assert failures == []
    keys = [body["images"][0]["key"] for *_, body in results]
    assert len(set(keys)) == REQUESTS
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        downloaded = list(pool.map(lambda r: download(r[3]["images"][0]["url"]), results))
        sample = results[::5]
        expected = list(pool.map(lambda r: expected_png(local, r[1], r[0]), sample))
    mismatched = [r[0] for r, want in zip(sample, expected) if downloaded[r[0]] != want]
    assert len(sample) == 100 and mismatched == []
    assert len(set(downloaded)) == REQUESTS  # different seeds and prompts: different images
