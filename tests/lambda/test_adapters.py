"""Other APIs' shapes over our actions (model_api.adapters): each OpenAI route and TEI's /embed sends the model
exactly what our own route sends, answers in the other API's shape, and refuses what it cannot serve by its own
field names; the image route answers the image itself for Accept: image/png; the key authorizer reads x-api-key or
a Bearer key. Through the handler with a fake endpoint and S3 (moto), as deployed."""

from __future__ import annotations

import base64
import json
import struct
from types import SimpleNamespace

import pytest
from lambda_rig import api_event, tiny_png
from model_api.adapters import openai
from model_api.auth import api_key_from, authorizer_response
from model_api.routes import ModelInfo, catalog_to_json

CATALOG = [ModelInfo("sd", "text-to-image", "api-sd", "ml.g5.xlarge"),
           ModelInfo("gpt2-tgi", "text-generation", "api-gpt2-tgi", "ml.g5.xlarge"),
           ModelInfo("minilm", "embeddings", "api-minilm", "ml.m5.large"),
           ModelInfo("assistant", "chat", "api-assistant", "ml.g5.xlarge")]


def rig_for(make_rig, name, protocol):
    info = next(m for m in CATALOG if m.name == name)
    return make_rig(MODEL_NAME=name, MODEL_KIND=info.kind, ENDPOINT_NAME=info.endpoint_name, MODEL_PROTOCOL=protocol,
                    MODEL_CATALOG=catalog_to_json(CATALOG), SIGNER_ROLE_ARN="arn:aws:iam::123456789012:role/s")


def openai_error(response, status, code):
    assert response["statusCode"] == status, response["body"]
    error = response["json"]["error"]
    assert (error["code"], error["param"]) == (code, None)
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    return error["message"]


# ------------------------------------------------------------------------------------------------- embeddings


def test_v1_embeddings_sends_what_embeddings_sends_and_answers_both_encodings(make_rig):
    rig = rig_for(make_rig, "minilm", "pipeline")
    rig.endpoint.returns_json([[[3.0, 4.0]], [[0.0, 2.0]]])
    plain = rig.call(api_event("POST", {"model": "minilm", "input": ["a", "b"], "encoding_format": "float"},
                               resource="/v1/embeddings"))
    assert plain["statusCode"] == 200, plain["body"]
    assert rig.endpoint.requests[0]["body"] == {"inputs": ["a", "b"], "parameters": {"truncation": True}}
    body = plain["json"]
    assert (body["object"], body["model"], body["usage"]) == ("list", "minilm", {"prompt_tokens": 0, "total_tokens": 0})
    assert body["data"] == [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]},
                            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]}]
    rig.endpoint.returns_json([[[3.0, 4.0]]])
    encoded = rig.call(api_event("POST", {"model": "minilm", "input": "a", "encoding_format": "base64"},
                                 resource="/models/minilm/v1/embeddings"))
    data = base64.b64decode(encoded["json"]["data"][0]["embedding"])  # what the SDK asks for: float32 LE
    assert struct.unpack("<2f", data) == pytest.approx((0.6, 0.8), abs=1e-7)
    assert rig.endpoint.requests[1]["body"]["inputs"] == ["a"]


def test_tei_embed_answers_a_bare_list_of_vectors(make_rig):
    rig = rig_for(make_rig, "minilm", "pipeline")
    rig.endpoint.returns_json([[[3.0, 4.0]]])
    response = rig.call(api_event("POST", {"inputs": "a", "truncate": True, "normalize": True}, resource="/embed"))
    assert response["statusCode"] == 200 and response["json"] == [[0.6, 0.8]]
    refused = rig.call(api_event("POST", {"inputs": "a", "normalize": False}, resource="/embed"))
    assert refused["statusCode"] == 400 and refused["json"]["error"] == {
        "code": "invalid_request", "message": "normalize must be true (got false; vectors are always unit length)"}
    assert len(rig.endpoint.requests) == 1


@pytest.mark.parametrize("body,status,code,message", [
    ({"model": "other", "input": "a"}, 404, "model_not_found",
     'the model "other" is not served at this route, which serves "minilm"; GET /v1/models lists the models, and '
     "each answers at /models/<name>/v1 too"),
    ({"input": "a"}, 400, "invalid_request", "model is required"),
    ({"model": "minilm", "input": [1, 2]}, 400, "invalid_request",
     "input must be text or a list of texts; token ids (integers, or lists of them) are not served: send the text "
     "itself"),
    ({"model": "minilm", "input": "a", "dimensions": 8}, 400, "invalid_request",
     'unknown field "dimensions" in body (allowed: encoding_format, input, model, user)'),
    ({"model": "minilm", "input": "a", "encoding_format": "int8"}, 400, "invalid_request",
     'encoding_format must be "float" or "base64" or null (got "int8")'),
    ({"model": "minilm", "input": "\u200b"}, 400, "invalid_request", "input must not be blank"),
])
def test_v1_embeddings_refusals_are_openai_errors_naming_openai_fields(make_rig, body, status, code, message):
    rig = rig_for(make_rig, "minilm", "pipeline")
    assert openai_error(rig.call(api_event("POST", body, resource="/v1/embeddings")), status, code) == message
    assert rig.endpoint.requests == []  # refused before the model


# ------------------------------------------------------------------------------------------------ text routes


def test_v1_chat_maps_openai_fields_to_the_chat_call(make_rig):
    rig = rig_for(make_rig, "assistant", "toolkit")
    rig.endpoint.returns_json({"reply": "Hi there"})
    response = rig.call(api_event("POST", {
        "model": "assistant", "max_completion_tokens": 7, "temperature": 0, "top_p": 1, "seed": 4, "n": 1,
        "stream": False, "user": "u1",
        "messages": [{"role": "developer", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}]},
        resource="/v1/chat/completions"))
    assert response["statusCode"] == 200, response["body"]
    # developer is a system message; parts are one text; temperature 0 is greedy; top_p 1 is no filter.
    assert rig.endpoint.requests[0]["body"] == {"task": "chat", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "parameters": {"max_new_tokens": 7, "do_sample": False, "seed": 4}}
    body = response["json"]
    assert body["object"] == "chat.completion" and body["model"] == "assistant"
    assert body["id"] == f"chatcmpl-{body['request_id']}" and isinstance(body["created"], int)
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hi there"},
                                "finish_reason": "stop", "logprobs": None}]
    # Both token fields: max_completion_tokens (the newer) wins, as vLLM reads them.
    rig.endpoint.returns_json({"reply": "Hi"})
    both = rig.call(api_event("POST", {"model": "assistant", "messages": [{"role": "user", "content": "x"}],
                                       "max_tokens": 1, "max_completion_tokens": 2}, resource="/v1/chat/completions"))
    assert both["statusCode"] == 200 and rig.endpoint.requests[-1]["body"]["parameters"] == {"max_new_tokens": 2}
    assert len(rig.endpoint.requests) == 2


def test_v1_completions_maps_onto_tgi_parameters(make_rig):
    rig = rig_for(make_rig, "gpt2-tgi", "tgi")
    rig.endpoint.returns_json([{"generated_text": "Once upon a time, a cat"}])
    response = rig.call(api_event("POST", {"model": "gpt2-tgi", "prompt": ["Once upon a time"], "max_tokens": 5,
                                           "temperature": 0.5, "top_p": 0.9, "stop": "\n", "seed": 2, "echo": True},
                                  resource="/v1/completions"))
    assert response["statusCode"] == 200, response["body"]
    assert rig.endpoint.requests[0]["body"] == {"inputs": "Once upon a time", "parameters": {
        "max_new_tokens": 5, "return_full_text": True, "temperature": 0.5, "do_sample": True, "top_p": 0.9,
        "seed": 2, "stop": ["\n"]}}
    assert response["json"]["choices"][0]["text"] == "Once upon a time, a cat"
    assert response["json"]["object"] == "text_completion"
    two = rig.call(api_event("POST", {"model": "gpt2-tgi", "prompt": ["a", "b"]}, resource="/v1/completions"))
    assert openai_error(two, 400, "invalid_request") == "prompt must have at most 1 items (got 2)"


def test_v1_models_lists_the_models_with_openai_routes(make_rig):
    rig = rig_for(make_rig, "sd", "toolkit")
    every = rig.call(api_event("GET", resource="/v1/models"))["json"]
    assert [m["id"] for m in every["data"]] == ["sd", "gpt2-tgi", "minilm", "assistant"]
    assert every["data"][0] == {"id": "sd", "object": "model", "created": 0, "owned_by": "sagemaker-model-api",
                                "kind": "text-to-image", "base_path": "/models/sd/v1"}
    assert [m["id"] for m in rig.call(api_event("GET", resource="/models/sd/v1/models"))["json"]["data"]] == ["sd"]


def test_v1_models_retrieves_one_model_by_id_or_answers_openais_404(make_rig):
    rig = rig_for(make_rig, "sd", "toolkit")

    def retrieve(resource, model_id):
        event = api_event("GET", resource=resource)
        event["path"] = resource.replace("{model_id}", model_id)
        event["pathParameters"] = {"model_id": model_id}
        return rig.call(event)

    one = retrieve("/v1/models/{model_id}", "gpt2-tgi")
    assert one["statusCode"] == 200 and one["json"]["id"] == "gpt2-tgi" and one["json"]["kind"] == "text-generation"
    missing = retrieve("/v1/models/{model_id}", "gpt-4o")
    assert openai_error(missing, 404, "model_not_found") == (
        'no model "gpt-4o" here; the models are sd, gpt2-tgi, minilm, assistant (GET /v1/models)')
    assert missing["json"]["error"]["type"] == "invalid_request_error"  # OpenAI's shape, as its SDK reads it
    # At a model's own base URL only that model is there.
    assert retrieve("/models/sd/v1/models/{model_id}", "sd")["json"]["id"] == "sd"
    assert retrieve("/models/sd/v1/models/{model_id}", "gpt2-tgi")["statusCode"] == 404


def test_an_async_model_serves_no_adapted_route():
    from model_api import routes
    hosted = [ModelInfo("gpt2", "text-generation", "e", hosting="async"), ModelInfo("sd", "text-to-image", "e2")]
    paths = {r.path for r in routes.routes(hosted)}
    assert "/v1/completions" not in paths and "/models/gpt2/v1/completions" not in paths
    assert "/v1/images/generations" in paths and [m.name for m in routes.openai_models(hosted)] == ["sd"]


# ---------------------------------------------------------------------------------------------------- images


def test_v1_images_stores_each_image_and_answers_presigned_urls(make_rig):
    rig = rig_for(make_rig, "sd", "toolkit")
    rig.endpoint.returns_png_sequence([tiny_png(), tiny_png(shade=9)])
    response = rig.call(api_event("POST", {"model": "sd", "prompt": "a cat", "n": 2, "size": "512x768",
                                           "steps": 3, "seed": 9, "negative_prompt": "dogs"},
                                  resource="/v1/images/generations"))
    assert response["statusCode"] == 200, response["body"]
    assert rig.endpoint.requests[0]["body"] == {"inputs": "a cat", "parameters": {
        "width": 512, "height": 768, "num_inference_steps": 3, "guidance_scale": 7.5, "seed": 9,
        "num_images_per_prompt": 2, "negative_prompt": "dogs"}}
    body = response["json"]
    stored = rig.stored_keys()
    assert len(stored) == 2 and body["seed"] == 9
    assert all(sum(key in d["url"] for key in stored) == 1 for d in body["data"])  # each URL names one object
    assert {key for key in stored if any(key in d["url"] for d in body["data"])} == set(stored)
    assert all(d["revised_prompt"] is None and d["expires_at"].endswith("Z") for d in body["data"])


@pytest.mark.parametrize("body,message", [
    ({"model": "sd", "prompt": "a cat", "response_format": "b64_json"},
     'response_format must be "url" or null (got "b64_json"; url only: images are stored and answered as presigned '
     "URLs, never as b64_json)"),
    ({"model": "sd", "prompt": "a cat", "size": "1024x1024"},
     "size must be auto (512x512) or WIDTHxHEIGHT such as 512x512, each side a multiple of 8 from 256 to 768 (got "
     "\"1024x1024\")"),
    ({"model": "sd", "prompt": "a cat", "size": "512x516"},
     "size must be auto (512x512) or WIDTHxHEIGHT such as 512x512, each side a multiple of 8 from 256 to 768 (got "
     "\"512x516\")"),
    ({"model": "sd", "prompt": "a cat", "size": "big"}, "size must be auto (512x512) or WIDTHxHEIGHT such as 512x512, "
                                                        'each side a multiple of 8 from 256 to 768 (got "big")'),
    ({"model": "sd", "prompt": "a cat", "n": 5}, "n must be at most 4 (got 5)"),
    ({"model": "sd", "prompt": "a cat", "quality": "hd"},
     'unknown field "quality" in body (allowed: guidance_scale, model, n, negative_prompt, prompt, '
     "response_format, seed, size, steps, user)"),
])
def test_v1_images_refusals_name_openai_fields_and_store_nothing(make_rig, body, message):
    rig = rig_for(make_rig, "sd", "toolkit")
    assert openai_error(rig.call(api_event("POST", body, resource="/v1/images/generations")), 400,
                        "invalid_request") == message
    assert rig.endpoint.requests == [] and rig.stored_keys() == []


def test_accept_image_png_answers_the_image_itself_and_stores_nothing(make_rig):
    rig = rig_for(make_rig, "sd", "toolkit")
    png = tiny_png()
    rig.endpoint.returns(png)
    event = api_event("POST", {"inputs": "a cat", "parameters": {"seed": 3, "num_inference_steps": 2}},
                      headers={"Accept": "image/png, */*;q=0.5"})
    response = rig.handler.handle(event, SimpleNamespace(aws_request_id="r1"))
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is True
    assert response["headers"]["Content-Type"] == "image/png" and response["headers"]["X-Seed"] == "3"
    assert base64.b64decode(response["body"]) == png
    assert rig.stored_keys() == []
    # JSON stays the default: image/png second in Accept (API Gateway reads the first type only) gets the URLs.
    rig.endpoint.returns(png)
    second = rig.call(api_event("POST", {"prompt": "a cat"}, headers={"Accept": "application/json, image/png"}))
    assert second["statusCode"] == 200 and len(second["json"]["images"]) == 1


@pytest.mark.parametrize("accept,body,status,code", [
    ("image/jpeg", {"prompt": "a cat"}, 406, "not_acceptable"),  # our code makes PNG
    ("image/png", {"prompt": "a cat", "num_images": 2}, 400, "invalid_request"),
])
def test_accept_an_image_it_cannot_answer_is_refused_before_the_model(make_rig, accept, body, status, code):
    rig = rig_for(make_rig, "sd", "toolkit")
    response = rig.call(api_event("POST", body, headers={"Accept": accept}))
    assert (response["statusCode"], response["json"]["error"]["code"]) == (status, code)
    assert rig.endpoint.requests == []


# ------------------------------------------------------------------------------------------------------- auth


@pytest.mark.parametrize("headers,key", [
    ({"x-api-key": "k1"}, "k1"),
    ({"X-Api-Key": "k1", "Authorization": "Bearer k2"}, "k1"),  # x-api-key wins
    ({"Authorization": "Bearer k2"}, "k2"),
    ({"x-api-key": "", "Authorization": "Bearer k2"}, "k2"),  # an empty x-api-key is no key: the bearer one counts
    ({"x-api-key": ""}, None),
    ({"authorization": "bearer   k2 "}, "k2"),
    ({"Authorization": "Basic azI6"}, None),
    ({"Authorization": "Bearer "}, None),
    ({"Authorization": "Bearer a b"}, None),
    ({}, None),
    (None, None),
])
def test_the_key_comes_from_x_api_key_or_a_bearer_token(headers, key):
    assert api_key_from(headers) == key


def test_the_authorizer_allows_the_method_and_hands_the_key_to_api_gateway():
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST/v1/embeddings"
    answer = authorizer_response({"methodArn": arn, "headers": {"Authorization": "Bearer secret"}})
    assert answer == {"principalId": "api-key", "usageIdentifierKey": "secret", "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arn}]}}
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "authorizer_entry", Path(__file__).resolve().parents[2] / "lambda" / "authorizer.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    with pytest.raises(Exception) as refused:  # the one message API Gateway answers with 401
        entry.handler({"methodArn": arn, "headers": {}}, None)
    assert str(refused.value) == "Unauthorized"
    assert entry.handler({"methodArn": arn, "headers": {"x-api-key": "k"}}, None)["usageIdentifierKey"] == "k"


def test_float32_base64_is_openais_encoding():
    assert openai.float32_base64([1.0, -2.5]) == base64.b64encode(struct.pack("<ff", 1.0, -2.5)).decode()
    assert json.loads(json.dumps(openai.models_list([("m", "chat")])))["object"] == "list"


def test_the_smoke_checks_of_adapted_routes_tell_a_right_answer_from_a_wrong_one():
    from model_api.kinds import actions

    by_name = actions()
    png = tiny_png()
    assert by_name["v1/images/generations"].check({"data": [{"url": "u"}]}, {"u": png}.__getitem__) == ""  # its URL
    assert by_name["v1/images/generations"].check({"data": []}, lambda url: png) == "expected 1 image, got 0"
    assert by_name["v1/embeddings"].check({"data": [{"embedding": [1.0, 0.0]}, {"embedding": [0.0, 1.0]}]}, None) == ""
    assert by_name["v1/embeddings"].check({"data": [{"embedding": [2.0, 0.0]}, {"embedding": [0.0, 1.0]}]},
                                          None) == "vectors are not unit length"
    assert by_name["embed"].check([[1.0, 0.0], [0.0, 1.0]], None) == ""
    assert by_name["embed"].check({"embeddings": []}, None) == "the answer is not a list of vectors"
    assert by_name["v1/chat/completions"].check({"choices": [{"message": {"content": "hi"}}]}, None) == ""
    assert by_name["v1/chat/completions"].check({"choices": [{"message": {}}]}, None) == "no choices[0].message"
    assert by_name["v1/completions"].check({"choices": [{"text": "x"}]}, None) == ""
    assert by_name["v1/completions"].check({}, None) == "no choices[0].text"


def test_an_adapted_route_reads_a_base64_body_and_answers_with_the_request_id(make_rig):
    # API Gateway base64-encodes a body whose Content-Type is one of the API's binary media types.
    rig = rig_for(make_rig, "minilm", "pipeline")
    rig.endpoint.returns_json([[[3.0, 4.0]]])
    response = rig.call(api_event("POST", {"model": "minilm", "input": "a"}, resource="/v1/embeddings",
                                  base64_body=True))
    assert response["statusCode"] == 200, response["body"]
    assert response["json"]["request_id"] == response["headers"]["X-Request-Id"]
    assert rig.endpoint.requests[0]["body"]["inputs"] == ["a"]


def test_an_openai_image_request_that_accepts_png_still_gets_openais_json(make_rig):
    # A client mistake (Accept: image/png on OpenAI's route) is never a 5xx: the route answers its own shape.
    rig = rig_for(make_rig, "sd", "toolkit")
    rig.endpoint.returns(tiny_png())
    response = rig.call(api_event("POST", {"model": "sd", "prompt": "a cat"}, resource="/v1/images/generations",
                                  headers={"Accept": "image/png"}))
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is False, response["body"]
    assert len(response["json"]["data"]) == 1 and len(rig.stored_keys()) == 1
