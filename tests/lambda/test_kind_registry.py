"""Model kinds are registered in one place (model_api.kinds): each declares whole actions, and a kind added as one
module is routed and served by the handler with no other edit."""

from __future__ import annotations

import json

import example_kind
import pytest
from lambda_rig import api_event
from model_api import routes
from model_api.errors import ApiError
from model_api.kinds import KINDS, actions
from model_api.kinds.text_to_image import ImageConfig
from model_api.routes import ModelInfo, catalog_to_json
from model_api.text import TextConfig


def config_for(kind):
    """A model's config, streaming on (so the stream-only actions take their bodies too)."""
    return ImageConfig() if kind.stores_images else TextConfig(protocol=kind.protocols[0], streaming=True)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_action_accepts_its_example_and_smoke_body_and_refuses_its_invalid_one(name):
    kind = KINDS[name]
    config = config_for(kind)
    for action in kind.actions:
        # An OpenAI body names its model; the smoke test adds the name of the model it calls.
        named = {"model": "m"} if action.name.startswith("v1/") else {}
        for body in (json.loads(action.example), {**action.smoke, **named}):
            call = action.prepare(api_event("POST", body, resource=action.short_path), config)
            assert call.body and call.content_type == "application/json", (name, action.name)
        with pytest.raises(ApiError) as refused:
            action.prepare(api_event("POST", {**action.smoke_invalid, **named}, resource=action.short_path), config)
        assert refused.value.status == 400, (name, action.name)
        assert action.short_path == f"/{action.name}"
    assert kind.protocols and kind.target_invocations > 0 and kind.target_backlog > 0


def test_the_registry_names_each_kind_by_its_own_name_and_each_action_once():
    assert list(KINDS) == ["text-to-image", "text-generation", "embeddings", "chat"]
    assert all(kind.name == name for name, kind in KINDS.items())
    assert list(actions()) == ["images", "v1/images/generations", "generate", "generate_stream", "v1/completions",
                               "embeddings",
                               "v1/embeddings", "embed", "chat", "v1/chat/completions"]
    # The chat kind embeds with the embeddings kind's action itself, not a copy that could drift.
    assert KINDS["chat"].action("embeddings") is KINDS["embeddings"].action("embeddings")
    assert [k.name for k in KINDS.values() if k.stores_images] == ["text-to-image"]


def test_smoke_checks_tell_a_right_answer_from_a_wrong_one():
    by_name = actions()
    assert by_name["generate"].check({"generated_text": "x"}, None) == ""
    assert by_name["generate"].check({}, None) == "no generated_text"
    assert by_name["chat"].check({"reply": "hi"}, None) == ""
    assert by_name["chat"].check({"reply": 3}, None) == "no reply"
    assert by_name["embeddings"].check({"embeddings": [[1.0, 0.0], [0.0, 1.0]]}, None) == ""
    assert by_name["embeddings"].check({"embeddings": [[2.0, 0.0], [0.0, 1.0]]}, None) == "vectors are not unit length"
    assert by_name["embeddings"].check({"embeddings": [[1.0]]}, None) == "expected 2 vectors of one size"
    assert by_name["images"].check({"images": []}, None) == "expected 1 image, got 0"
    assert "not a complete PNG/JPEG (3 bytes)" in by_name["images"].check(
        {"images": [{"url": "u", "key": "k"}]}, lambda url: b"abc")


def test_a_new_kind_is_one_module_and_its_registration(make_rig, monkeypatch):
    monkeypatch.setitem(KINDS, "text-classification", example_kind.KIND)
    catalog = [ModelInfo("sentiment", "text-classification", "api-sentiment", "ml.m5.large"),
               ModelInfo("gpt2", "text-generation", "api-gpt2", "ml.g5.xlarge")]
    got = {(r.path, r.method, r.model, r.action) for r in routes.routes(catalog)}
    assert {("/models/sentiment", "POST", "sentiment", "classify"), ("/classify", "POST", "sentiment", "classify"),
            ("/models/sentiment/endpoint", "GET", "sentiment", "endpoint")} <= got
    assert routes.main_action("text-classification") is example_kind.CLASSIFY

    rig = make_rig(MODEL_NAME="sentiment", MODEL_KIND="text-classification", ENDPOINT_NAME="api-sentiment",
                   MODEL_PROTOCOL="pipeline", MODEL_CATALOG=catalog_to_json(catalog))
    rig.endpoint.returns_json([{"label": "POSITIVE", "score": 0.98}])
    response = rig.call(api_event("POST", {"inputs": "I love this"}, resource="/classify"))
    assert response["statusCode"] == 200, response["body"]
    assert response["json"]["labels"] == [{"label": "POSITIVE", "score": 0.98}]
    request, = rig.endpoint.requests
    assert request["url"].endswith("/endpoints/api-sentiment/invocations")
    assert request["body"] == {"inputs": "I love this"}
    refused = rig.call(api_event("POST", {"inputs": "\u200b"}, resource="/models/sentiment"))
    assert refused["statusCode"] == 400 and refused["json"]["error"]["code"] == "invalid_request"
    assert len(rig.endpoint.requests) == 1  # nothing reached the model
    rig.endpoint.returns_json({"unexpected": True})
    broken = rig.call(api_event("POST", {"inputs": "I love this"}, resource="/classify"))
    assert (broken["statusCode"], broken["json"]["error"]["code"]) == (502, "bad_model_response")
    wrong = rig.call(api_event("POST", {"inputs": "x"}, resource="/generate"))
    assert wrong["statusCode"] == 404  # another model's route
    assert rig.stored_keys() == []


def test_the_app_and_its_streams_name_no_kind():
    """Kinds own themselves: the app (model_api.app), its streamed answers (model_api.streamed) and the Lambda
    entries run every kind through the hooks of model_api.kinds.base (Kind: config type, images made, container
    environment, local stand-in; Action: run, finish_job, job_body, progress), never by a kind's name or module."""
    from pathlib import Path

    import model_api

    package = Path(model_api.__file__).parent
    sources = {path.name: path.read_text() for path in [package / "app.py", package / "streamed.py",
                                                         package.parent / "handler.py",
                                                         package.parent / "stream_handler.py"]}
    for name, source in sources.items():
        for kind in KINDS:
            module = kind.replace("-", "_")
            for named in (f'"{kind}"', f"kinds.{module}", f"import {module}"):
                assert named not in source, (name, named)


def test_the_image_kind_runs_through_its_hooks():
    kind = KINDS["text-to-image"]
    images = kind.actions[0]
    assert kind.config_from_env({}).__class__ is ImageConfig
    assert images.run is not None and images.finish_job is not None and images.job_body is not None
    assert images.progress is not None and kind.can_stream
    assert kind.made_images({"images": [{}, {}]}, images) == 2 and kind.made_images(b"png", images) is None
    environment = kind.container_environment(
        type("S", (), {"max_size": 768, "max_steps": 50, "max_images": 4})(), None, 58)
    assert environment == {"SD_MAX_SIZE": "768", "SD_MAX_STEPS": "50", "SD_MAX_IMAGES": "4",
                           "REQUEST_DEADLINE_SECONDS": "58"}
    for name, other in KINDS.items():  # the text kinds: the app's default pipeline, the text config
        if name != "text-to-image":
            assert all(a.run is None and a.progress is None for a in other.actions), name
            assert isinstance(other.config_from_env({}), TextConfig), name
