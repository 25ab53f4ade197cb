"""A bounded load test of local mode on loopback: 250 image requests at concurrency 16. Zero errors, zero key
collisions, every URL downloads a distinct image, and for every 5th request (50 of them; each check re-runs the
model, so all 250 would double the test's time) exactly the bytes the model generates for that request. It shares
the session's local process (its requests ask for 64 px and 1 step explicitly)."""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor

from local_rig import request
from model_api.kinds.text_to_image import ImageRequest, model_request

REQUESTS = 250
CONCURRENCY = 16
SMALL = {"width": 64, "height": 64, "steps": 1}


def expected_png(local, prompt: str, seed: int) -> bytes:
    """What the model makes for this request, asked directly through the container contract."""
    body, accept = model_request(ImageRequest(prompt, None, 64, 64, 1, 7.5, seed, 1), seed)
    req = urllib.request.Request(f"{local['endpoint_url']}/invocations", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept": accept,
                                          "Authorization": f"Bearer {local['endpoint_token']}"})
    with urllib.request.urlopen(req, timeout=120) as response:
        return response.read()


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def test_250_requests_at_concurrency_16_lose_nothing(local):
    def one(i):
        prompt = f"tiger number {i}"
        status, _, body = request(local, body={"prompt": prompt, "seed": i, **SMALL})
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
    assert len(sample) == REQUESTS // 5 and mismatched == []
    assert len(set(downloaded)) == REQUESTS  # different seeds and prompts: different images
