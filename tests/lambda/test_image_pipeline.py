"""The pure steps of the image pipeline."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from lambda_rig import tiny_png
from model_api.errors import ApiError
from model_api.kinds.text_to_image import (
    ImageRequest,
    decode_model_images,
    image_key,
    is_complete_png,
    model_request,
    split_png_sequence,
)


def test_keys_are_dated_and_unique_under_concurrency():
    when = datetime(2026, 11, 21, 23, 59, 59, tzinfo=timezone.utc)
    with ThreadPoolExecutor(16) as pool:
        keys = list(pool.map(lambda _: image_key("images/", when, str(uuid.uuid4())), range(10_000)))
    assert len(set(keys)) == 10_000
    assert all(k.startswith("images/2026/11/21/") and k.endswith(".png") for k in keys)


def test_png_completeness_check():
    png = tiny_png()
    assert is_complete_png(png)
    assert not is_complete_png(png[:-1])
    assert not is_complete_png(png[:-12])
    assert not is_complete_png(b"\x89PNG\r\n\x1a\n")
    assert not is_complete_png(b"GIF89a" + png[6:])


def test_model_request_asks_for_raw_png_for_one_image_and_json_for_several():
    request = ImageRequest("p", None, 512, 512, 30, 7.5, None, 1)
    body, accept = model_request(request, seed=5)
    assert accept == "image/png"
    assert json.loads(body) == {"inputs": "p", "parameters": {
        "width": 512, "height": 512, "num_inference_steps": 30, "guidance_scale": 7.5, "seed": 5,
        "num_images_per_prompt": 1}}
    _, accept = model_request(ImageRequest("p", "n", 512, 512, 30, 7.5, 1, 2), seed=1)
    assert accept == "application/x-png-sequence"


def test_png_sequences_split_into_their_files():
    pngs = [tiny_png(8, 8, shade) for shade in (1, 2, 3)]
    assert split_png_sequence(b"".join(pngs)) == pngs
    assert decode_model_images(b"".join(pngs), "application/x-png-sequence", 3) == (pngs, "image/png")
    for broken in (b"".join(pngs)[:-3], pngs[0] + b"junk", b"GIF89a" + pngs[0], pngs[0][:20]):
        with pytest.raises(ApiError) as caught:
            split_png_sequence(broken)
        assert caught.value.status == 502


def test_decode_accepts_content_type_parameters_and_rejects_mismatches():
    png = tiny_png()
    assert decode_model_images(png, "image/png; charset=binary", 1) == ([png], "image/png")
    with pytest.raises(ApiError) as caught:
        decode_model_images(png, "", 1)
    assert caught.value.status == 502
