"""What local mode's banner suggests as a first request: the action's own example, or a small image when the
default one takes long on this machine (a first curl should answer in seconds)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from model_api.kinds.text_to_image import KIND as IMAGES

from local.__main__ import QUICK_TRY_SECONDS, try_body

SETTINGS = SimpleNamespace(limits=SimpleNamespace(min_size=256, max_steps=50))


def test_a_quick_default_image_is_tried_as_it_is():
    action = IMAGES.actions[0]
    assert try_body(action, None, SETTINGS) == action.example  # no estimate: not an image model
    assert try_body(action, QUICK_TRY_SECONDS, SETTINGS) == action.example


def test_a_slow_default_image_is_tried_small():
    action = IMAGES.actions[0]
    body = json.loads(try_body(action, QUICK_TRY_SECONDS + 0.1, SETTINGS))
    assert body == {**json.loads(action.example), "width": 256, "height": 256, "steps": 4}
    few = SimpleNamespace(limits=SimpleNamespace(min_size=64, max_steps=2))
    assert json.loads(try_body(action, 60, few))["steps"] == 2  # never more steps than the deployment allows
