"""Handler behaviour per model kind: text generation (TGI and pipeline), embeddings, chat, JumpStart images, and
the routes every deployment has."""

from __future__ import annotations

import base64
import io
import math
import urllib.request

import pytest
from lambda_rig import REGION, api_event
from model_api.routes import ModelInfo, catalog_to_json
from test_handler import assert_error

CATALOG = [ModelInfo("gpt2-tgi", "text-generation", "api-gpt2-tgi", "ml.g5.xlarge"),
           ModelInfo("minilm", "embeddings", "api-minilm", "ml.m5.large"),
           ModelInfo("assistant", "chat", "api-assistant", "ml.g5.xlarge"),
           ModelInfo("studio-sd", "text-to-image", "my-jumpstart-endpoint", None)]


def model_env(name: str, protocol: str) -> dict:
    info = next(m for m in CATALOG if m.name == name)
    return {"MODEL_NAME": name, "MODEL_KIND": info.kind, "ENDPOINT_NAME": info.endpoint_name,
            "MODEL_PROTOCOL": protocol, "MODEL_CATALOG": catalog_to_json(CATALOG)}


@pytest.fixture
def tgi(make_rig):
    return make_rig(**model_env("gpt2-tgi", "tgi"))


# ------------------------------------------------------------------------------------------------------ generate


def test_generate_sends_tgi_parameters_and_returns_the_text(tgi):
    tgi.endpoint.returns_json([{"generated_text": " there was a tiger."}])
    response = tgi.call(api_event("POST", {"inputs": "Once upon a time", "parameters": {
        "temperature": 0.7, "top_p": 0.9, "top_k": 50, "seed": 3, "stop": ["\n"], "do_sample": True}},
        resource="/generate"))
    assert response["statusCode"] == 200, response["body"]
    assert response["json"]["generated_text"] == " there was a tiger."
    request, = tgi.endpoint.requests
    assert request["url"].endswith("/endpoints/api-gpt2-tgi/invocations")
    assert request["body"] == {"inputs": "Once upon a time", "parameters": {
        "max_new_tokens": 128, "return_full_text": False, "temperature": 0.7, "top_p": 0.9, "top_k": 50,
        "seed": 3, "stop": ["\n"], "do_sample": True}}


def test_generate_takes_the_bounds_themselves(tgi):
    for tokens in (1, 1024):
        tgi.endpoint.returns_json([{"generated_text": "x"}])
        response = tgi.call(api_event("POST", {"inputs": "a", "parameters": {"max_new_tokens": tokens}},
                                      resource="/generate"))
        assert response["statusCode"] == 200, response["body"]
        assert tgi.endpoint.requests[-1]["body"]["parameters"]["max_new_tokens"] == tokens


def test_generate_answers_at_its_own_path_too(tgi):
    tgi.endpoint.returns_json({"generated_text": "x"})
    assert tgi.call(api_event("POST", {"inputs": "a"}, resource="/models/gpt2-tgi"))["statusCode"] == 200


@pytest.mark.parametrize("body, message", [
    (None, "body is empty"),
    ({}, "inputs is required"),
    ({"inputs": ""}, "inputs must not be empty"),
    ({"inputs": "a", "parameters": {"temperature": 0}}, "parameters.temperature must be at least 0.01 (got 0)"),
    ({"inputs": "a", "parameters": {"top_p": 1.0}}, "parameters.top_p must be less than 1"),
    ({"inputs": "a", "parameters": {"top_p": 0}}, "parameters.top_p must be greater than 0"),
    ({"inputs": "a", "parameters": {"top_k": 0}}, "parameters.top_k must be at least 1"),
    ({"inputs": "a", "parameters": {"repetition_penalty": 0}}, "parameters.repetition_penalty must be at least 0.01 (got 0)"),
    ({"inputs": "a", "parameters": {"max_new_tokens": 5000}}, "parameters.max_new_tokens must be at most 1024"),
    ({"inputs": "a", "parameters": {"stop": ["a", "b", "c", "d", "e"]}}, "parameters.stop must have at most 4 items"),
    ({"inputs": "a", "parameters": {"do_sample": "yes"}}, "parameters.do_sample must be true or false"),
    ({"inputs": "a", "parameters": {"best_of": 2}}, 'unknown field "best_of" in parameters'),
    ({"inputs": ["a"]}, "inputs must be a string"),
])
def test_generate_validates_by_tgi_rules(tgi, body, message):
    response = tgi.call(api_event("POST", body, resource="/generate"))
    assert message in assert_error(response, 400, "invalid_request")
    assert tgi.endpoint.requests == []


def test_pipeline_protocol_refuses_tgi_only_parameters(make_rig):
    rig = make_rig(**model_env("gpt2-tgi", "pipeline"))
    response = rig.call(api_event("POST", {"inputs": "a", "parameters": {"seed": 1}}, resource="/generate"))
    assert 'unknown field "seed" in parameters' in assert_error(response, 400, "invalid_request")


def test_generate_rejects_answers_without_text(tgi):
    tgi.endpoint.returns_json([{"text": "nope"}])
    assert assert_error(tgi.call(api_event("POST", {"inputs": "a"}, resource="/generate")), 502,
                        "bad_model_response") == "the model's answer has no generated_text"
    tgi.endpoint.returns(b"not json", "text/plain")
    assert_error(tgi.call(api_event("POST", {"inputs": "a"}, resource="/generate")), 502, "bad_model_response")


# ------------------------------------------------------------------------------------------------------ embeddings


def norm(vector):
    return math.sqrt(sum(x * x for x in vector))


def test_pipeline_token_vectors_are_mean_pooled_and_normalised(make_rig):
    rig = make_rig(**model_env("minilm", "pipeline"))
    # feature-extraction answers [1][tokens][dim] per input
    rig.endpoint.returns_json([[[[1.0, 0.0], [3.0, 0.0]]], [[[0.0, 2.0], [0.0, 4.0], [0.0, 6.0]]]])
    response = rig.call(api_event("POST", {"inputs": ["first", "second"]}, resource="/embeddings"))
    assert response["statusCode"] == 200, response["body"]
    assert response["json"]["embeddings"] == [[1.0, 0.0], [0.0, 1.0]]
    assert response["json"]["dimensions"] == 2
    # Truncated to the model's positions, as sentence-transformers does, instead of failing on long texts.
    assert rig.endpoint.requests[0]["body"] == {"inputs": ["first", "second"], "parameters": {"truncation": True}}


def test_a_single_string_is_a_batch_of_one(make_rig):
    rig = make_rig(**model_env("minilm", "pipeline"))
    rig.endpoint.returns_json([[[3.0, 4.0]]])
    body = rig.call(api_event("POST", {"inputs": "one"}, resource="/embeddings"))["json"]
    assert body["embeddings"] == [[0.6, 0.8]] and body["dimensions"] == 2
    assert rig.endpoint.requests[0]["body"]["inputs"] == ["one"]


@pytest.mark.parametrize("answer", [
    [[[1.0, 2.0]]],  # one vector for two inputs
    [[["a", "b"]], [[1.0, 2.0]]],
    [[[0.0, 0.0]], [[1.0, 2.0]]],
    [[[1.0, 2.0]], [[1.0, 2.0, 3.0]]],
    [[[1.0, 2.0], [3.0]], [[1.0, 2.0]]],  # token vectors of one input of different lengths
    {"embeddings": []},
])
def test_malformed_embeddings_are_502(make_rig, answer):
    rig = make_rig(**model_env("minilm", "pipeline"))
    rig.endpoint.returns_json(answer)
    assert_error(rig.call(api_event("POST", {"inputs": ["a", "b"]}, resource="/embeddings")), 502,
                 "bad_model_response")


@pytest.mark.parametrize("body, message", [
    ({"inputs": []}, "inputs must have at least 1 items"),
    ({"inputs": [""]}, "inputs[0] must not be empty"),
    ({"inputs": ["a"] * 33}, "inputs must have at most 32 items"),
    ({"inputs": 5}, "inputs must be a string or an array"),
    ({"text": "a"}, "inputs is required"),
])
def test_embeddings_validation(make_rig, body, message):
    rig = make_rig(**model_env("minilm", "pipeline"))
    assert message in assert_error(rig.call(api_event("POST", body, resource="/embeddings")), 400, "invalid_request")


# ------------------------------------------------------------------------------------------------------ chat


def test_chat_model_chats_and_embeds(make_rig):
    rig = make_rig(**model_env("assistant", "toolkit"))
    rig.endpoint.returns_json({"reply": "Hello!"})
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    response = rig.call(api_event("POST", {"messages": messages, "parameters": {"temperature": 0.5}},
                                  resource="/chat"))
    assert response["statusCode"] == 200 and response["json"]["reply"] == "Hello!"
    assert response["json"]["request_id"] == response["headers"]["X-Request-Id"]
    assert rig.endpoint.requests[0]["body"] == {"task": "chat", "messages": messages,
                                                "parameters": {"max_new_tokens": 128, "temperature": 0.5}}
    rig.endpoint.returns_json({"embeddings": [[2.0, 0.0]]})
    response = rig.call(api_event("POST", {"inputs": "x"}, resource="/models/assistant/embeddings"))
    assert response["json"]["embeddings"] == [[1.0, 0.0]]
    assert rig.endpoint.requests[1]["body"] == {"task": "embeddings", "inputs": ["x"]}


def test_an_answer_that_is_not_json_is_502_naming_what_came(make_rig):
    rig = make_rig(**model_env("minilm", "pipeline"))
    rig.endpoint.returns(b"<html>busy</html>", "text/html")
    response = rig.call(api_event("POST", {"inputs": "x"}, resource="/embeddings"))
    assert assert_error(response, 502, "bad_model_response") == "the model returned text/html that is not JSON"


def test_chat_answer_without_a_reply_is_502(make_rig):
    rig = make_rig(**model_env("assistant", "toolkit"))
    rig.endpoint.returns_json({"text": "Hello!"})
    response = rig.call(api_event("POST", {"messages": [{"role": "user", "content": "Hi"}]}, resource="/chat"))
    assert assert_error(response, 502, "bad_model_response") == "the model's answer has no reply"


def test_an_empty_body_is_told_what_to_send(tgi):
    message = assert_error(tgi.call(api_event("POST", None, resource="/generate")), 400, "invalid_request")
    assert message == 'request body is empty; send a JSON object such as {"inputs": "Once upon a time"}'


@pytest.mark.parametrize("body, message", [
    ({"messages": []}, "messages must have at least 1 items"),
    ({"messages": [{"role": "robot", "content": "x"}]},
     'messages[0].role must be "system" or "user" or "assistant" (got "robot")'),
    ({"messages": [{"role": "user"}]}, "messages[0].content is required"),
    ({"messages": [{"role": "user", "content": "x"}], "parameters": {"top_p": 2}}, "parameters.top_p must be less"),
])
def test_chat_validation(make_rig, body, message):
    rig = make_rig(**model_env("assistant", "toolkit"))
    assert message in assert_error(rig.call(api_event("POST", body, resource="/chat")), 400, "invalid_request")


# ------------------------------------------------------------------------------------------------------ JumpStart


def jpeg(shade: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, 0, 0)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_jumpstart_endpoint_gets_its_own_request_shape_and_jpegs_are_stored(make_rig):
    rig = make_rig(**model_env("studio-sd", "jumpstart"))
    images = [jpeg(10), jpeg(200)]
    rig.endpoint.returns_json({"generated_images": [base64.b64encode(i).decode() for i in images],
                               "prompt": "a cyborg tiger"})
    response = rig.call(api_event("POST", {"prompt": "a cyborg tiger", "num_images": 2, "seed": 5,
                                           "negative_prompt": "blurry"}))
    assert response["statusCode"] == 200, response["body"]
    request, = rig.endpoint.requests
    assert request["url"].endswith("/endpoints/my-jumpstart-endpoint/invocations")
    accept = request["headers"]["Accept"]
    assert (accept.decode() if isinstance(accept, bytes) else accept) == "application/json;jpeg"
    assert request["body"] == {"prompt": "a cyborg tiger", "width": 512, "height": 512, "num_images_per_prompt": 2,
                               "num_inference_steps": 30, "guidance_scale": 7.5, "seed": 5,
                               "negative_prompt": "blurry"}
    stored = response["json"]["images"]
    assert all(i["key"].endswith(".jpg") for i in stored)
    for item, expected in zip(stored, images):
        with urllib.request.urlopen(item["url"], timeout=10) as download:
            assert download.read() == expected and download.headers["Content-Type"] == "image/jpeg"


def test_truncated_jpeg_is_502_and_stores_nothing(make_rig):
    rig = make_rig(**model_env("studio-sd", "jumpstart"))
    rig.endpoint.returns_json({"generated_images": [base64.b64encode(jpeg(1)[:-2]).decode()]})
    assert_error(rig.call(api_event("POST", {"prompt": "p"})), 502, "bad_model_response", rig)


# ------------------------------------------------------------------------------------------------------ routes


def test_endpoint_routes_describe_the_models(tgi):
    response = tgi.call(api_event("GET", resource="/endpoint"))
    assert response["statusCode"] == 200
    endpoints = response["json"]["endpoints"]
    assert [e["name"] for e in endpoints] == ["gpt2-tgi", "minilm", "assistant", "studio-sd"]
    assert endpoints[0] == {"name": "gpt2-tgi", "kind": "text-generation", "endpoint_name": "api-gpt2-tgi",
                            "runtime_url": f"https://runtime.sagemaker.{REGION}.amazonaws.com/endpoints/api-gpt2-tgi"
                                           "/invocations",
                            "instance_type": "ml.g5.xlarge", "hosting": "realtime", "inference_component": None,
                            "streaming": False, "path": "/models/gpt2-tgi"}
    own = tgi.call(api_event("GET", resource="/models/gpt2-tgi/endpoint"))["json"]
    assert own == endpoints[0]


def test_a_model_serves_only_its_own_routes(tgi):
    assert_error(tgi.call(api_event("POST", {"inputs": "x"}, resource="/embeddings")), 404, "not_found")
    assert_error(tgi.call(api_event("POST", {"inputs": "x"}, resource="/models/minilm")), 404, "not_found")
    assert_error(tgi.call(api_event("GET", resource="/generate")), 405, "method_not_allowed")
    assert tgi.endpoint.requests == []
    assert sorted(tgi.handler.routes) == [("/endpoint", "GET"), ("/generate", "POST"), ("/models/gpt2-tgi", "POST"),
                                          ("/models/gpt2-tgi/endpoint", "GET"), ("/models/gpt2-tgi/v1/completions", "POST"),
                                          ("/models/gpt2-tgi/v1/models", "GET"),
                                          ("/models/gpt2-tgi/v1/models/{model_id}", "GET"),
                                          ("/v1/completions", "POST"), ("/v1/models", "GET"),
                                          ("/v1/models/{model_id}", "GET")]


def test_a_shared_model_names_its_inference_component_in_every_invocation(make_rig):
    rig = make_rig(MODEL_NAME="minilm", MODEL_KIND="embeddings", MODEL_PROTOCOL="pipeline",
                   ENDPOINT_NAME="stack-shared", INFERENCE_COMPONENT="stack-minilm")
    rig.endpoint.returns_json([[[0.1, 0.2], [0.3, 0.4]]])
    response = rig.call(api_event("POST", {"inputs": "a"}, resource="/embeddings"))
    assert response["statusCode"] == 200, response["body"]
    (sent,) = rig.endpoint.requests
    assert sent["url"].endswith("/endpoints/stack-shared/invocations")
    component = sent["headers"]["X-Amzn-SageMaker-Inference-Component"]
    assert (component.decode() if isinstance(component, bytes) else component) == "stack-minilm"


def test_an_async_jobs_answer_that_is_not_json_is_the_models_fault_in_every_text_kind():
    # A finished job's answer comes from S3 with no content type: the message says "a body", never an invented type.
    from model_api.errors import ApiError
    from model_api.kinds import KINDS

    meta = {"protocol": "pipeline", "count": 1}
    for kind in KINDS.values():
        for action in kind.actions:
            if action.finish is None:
                continue
            with pytest.raises(ApiError) as caught:
                action.finish(b"<html>not json</html>", meta)
            assert (caught.value.status, caught.value.code, caught.value.message) == (
                502, "bad_model_response", "the model returned a body that is not JSON"), action.name


def test_the_smoke_checks_of_text_answers_pass_a_right_answer_and_name_a_wrong_one():
    from model_api.kinds import KINDS

    generate = KINDS["text-generation"].action("generate").check
    assert generate({"generated_text": "Paris"}, None) == ""
    assert generate({"generated_text": 3}, None) == "no generated_text"
    chat = KINDS["chat"].action("chat").check
    assert chat({"reply": "hello"}, None) == "" and chat({}, None) == "no reply"


@pytest.mark.parametrize("original, status, message", [
    # TGI's 422 body is JSON: its "error" is what the caller reads.
    ('{"error":"Input validation error: `inputs` must have less than 768 tokens. Given: 800","error_type":"validation"}',
     422, "the model refused the input (container status 422): Input validation error: `inputs` must have less "
          "than 768 tokens. Given: 800"),
    # torch's embedding past the positions, as the toolkit's text-generation pipeline answers it: explained.
    ("index out of range in self", 400,
     "the model refused the input (container status 400): the prompt and the tokens to generate are longer than the "
     "model's context window (the positions it can attend to): shorten the prompt or ask for fewer new tokens"),
    ('{"detail": "not TGI"}', 422, 'the model refused the input (container status 422): {"detail": "not TGI"}'),
])
def test_a_containers_refusal_reaches_the_caller_in_its_own_words(original, status, message):
    from botocore.exceptions import ClientError
    from model_api.aws import invoke_error

    error = ClientError({"Error": {"Code": "ModelError", "Message": "Received client error"},
                         "OriginalStatusCode": status, "OriginalMessage": original}, "InvokeEndpoint")
    refused = invoke_error(error, "e", inputs_only_fail_400=True)
    assert (refused.status, refused.code, refused.message) == (400, "model_rejected_input", message)
