"""Bounds that keep a valid request valid on the real model: the work an image request asks of its instance, the
token budget of a TGI model, and a prompt pattern that means the same to every regex engine."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lambda_rig import api_event, tiny_png
from model_api.kinds.text_to_image import ImageConfig, ImageRequest, estimate_seconds, image_request_schema
from model_api.routes import ModelInfo, catalog_to_json
from model_api.schema import BLANK_CHARACTERS, NOT_BLANK
from model_api.validation import validate

from deployment.settings import Settings

G5 = Settings.from_values({}).image_config_for(Settings.from_values({}).catalog[0])


def test_the_documented_step_cost_reaches_the_image_config():
    assert (G5.step_seconds, G5.time_budget_seconds, G5.instance_type) == (0.09, 22.0, "ml.g5.xlarge")
    assert ImageConfig.from_env(G5.to_env()) == G5


@pytest.mark.parametrize("size, steps, images, fits", [
    (512, 30, 1, True),     # the default: ~3.9 s on a g5
    (768, 50, 1, True),     # the largest single image
    (512, 50, 4, True),     # four default-size images at the most steps
    (768, 50, 4, False),    # everything at once: ~43 s, past the gateway's time
    (768, 40, 3, False),
])
def test_heavy_requests_are_refused_before_the_gpu_spends_the_time(make_rig, size, steps, images, fits):
    rig = make_rig(**G5.to_env())
    body = {"prompt": "p", "width": size, "height": size, "steps": steps, "num_images": images}
    request = ImageRequest("p", None, size, size, steps, 7.5, None, images)
    assert (estimate_seconds(request, 0.09) <= 22) == fits
    if fits:
        rig.endpoint.returns_png_sequence([tiny_png()] * images) if images > 1 else rig.endpoint.returns(tiny_png())
        assert rig.call(api_event("POST", body))["statusCode"] == 200
    else:
        response = rig.call(api_event("POST", body))
        assert response["statusCode"] == 400 and response["json"]["error"]["code"] == "request_too_heavy"
        message = response["json"]["error"]["message"]
        assert f"{images} image(s) of {size}x{size} with {steps} steps" in message and "ml.g5.xlarge" in message
        assert "within 22 s" in message and rig.endpoint.requests == [] and rig.stored_keys() == []


def test_an_existing_endpoint_of_unknown_speed_is_not_bounded(make_rig):
    rig = make_rig(**ImageConfig(step_seconds=None).to_env())
    rig.endpoint.returns_png_sequence([tiny_png()] * 4)
    body = {"prompt": "p", "width": 768, "height": 768, "steps": 50, "num_images": 4}
    assert rig.call(api_event("POST", body))["statusCode"] == 200


def test_tgi_refusing_a_token_budget_is_the_callers_400_with_tgis_words(make_rig):
    catalog = [ModelInfo("gpt2-tgi", "text-generation", "api-gpt2-tgi")]
    limits = Settings.from_values({"models": "gpt2-tgi"}).text_limits_for(Settings.from_values(
        {"models": "gpt2-tgi"}).catalog[0])
    rig = make_rig(MODEL_NAME="gpt2-tgi", MODEL_KIND="text-generation", ENDPOINT_NAME="api-gpt2-tgi",
                   MODEL_PROTOCOL="tgi", MODEL_CATALOG=catalog_to_json(catalog), TEXT_LIMITS=limits.to_json())
    too_many = api_event("POST", {"inputs": "x", "parameters": {"max_new_tokens": 300}}, resource="/generate")
    response = rig.call(too_many)
    assert response["statusCode"] == 400 and "max_new_tokens must be at most 256" in response["body"]
    message = "Input validation error: `inputs` must have less than 768 tokens. Given: 2051"
    rig.endpoint.fails(424, "ModelError", {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": 422,
                                           "OriginalMessage": message, "Message": "Received client error (422)"})
    response = rig.call(api_event("POST", {"inputs": "long " * 1500}, resource="/generate"))
    assert response["statusCode"] == 400
    assert response["json"]["error"] == {"code": "model_rejected_input",
                                         "message": f"the model refused the input (container status 422): {message}"}


# ------------------------------------------------------------------------------------- a pattern for every engine

blank = st.text(alphabet=st.sampled_from([" ", "\t", "\n", "\r", "\u00a0", "\u200b", "\u200c", "\u200d", "\u2060",
                                          "\ufeff", "\u3000", "\u2028", "\u00ad", "\u180e", "\u202e"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(before=blank, visible=st.text(min_size=0, max_size=3), after=blank)
def test_not_blank_means_the_same_searched_matched_or_fully_matched(before, visible, after):
    text = before + visible + after
    expected = any(re.fullmatch(f"[{BLANK_CHARACTERS}]", c) is None for c in text)
    assert bool(re.search(NOT_BLANK, text)) == expected
    assert bool(re.fullmatch(NOT_BLANK, text)) == expected  # Java's matches(): API Gateway's validator, likely
    assert bool(re.match(NOT_BLANK, text)) == expected
    problems = validate({"prompt": text}, image_request_schema(G5.limits)) if text else ["empty"]
    assert (not problems) == expected or (not text)


def test_invisible_only_prompts_are_blank_at_the_lambda(rig):
    for prompt in ("\u200b\u200b", "\ufeff ", "\u2060\t\u3000"):
        response = rig.call(api_event("POST", {"prompt": prompt}))
        assert response["statusCode"] == 400 and "prompt must not be blank" in response["body"], prompt
    assert json.dumps(NOT_BLANK).isascii()  # the same bytes in the gateway model and the Lambda


@pytest.mark.parametrize("raw, message", [
    ('{"a":', "request body is not valid JSON at line 1, column 6: a value (an object, array, string, number, true, "
              "false or null) is missing"),
    ("{a: 1}", "request body is not valid JSON at line 1, column 2: an object key must be text in double quotes"),
    ("[1 2]", "request body is not valid JSON at line 1, column 4: a comma is missing between two items"),
    ('{"a" 1}', "request body is not valid JSON at line 1, column 6: a colon is missing after an object key"),
    ('{"a": "b', "request body is not valid JSON at line 1, column 7: a string has no closing double quote"),
    ('{"a": "\x01"}', "request body is not valid JSON at line 1, column 8: a string holds a raw control character "
                      "(write \\n, \\t, ... instead)"),
    ('{"a": "\\q"}', "request body is not valid JSON at line 1, column 8: a string holds a backslash escape JSON "
                     "does not have"),
    ('{"a": "\\u12"}', "request body is not valid JSON at line 1, column 9: a string holds a \\u escape that is not "
                       "four hex digits"),
    ('{"a": 1}\n{"b": 2}', "request body is not valid JSON at line 2, column 1: more follows the JSON value; send one "
                          "value"),
    ('{"a": Infinity}', "request body is not valid JSON: Infinity is not a JSON number (JSON has no NaN or Infinity)"),
    ("[" * 5000, "request body nests objects or arrays too deeply to read (keep it to a few levels, as the "
                 "documented bodies are)"),
    ("prompt=a+cat&width=256", "request body must be JSON (Content-Type: application/json), such as {}; this one is "
                               "form-encoded (name=value&...)"),
])
def test_a_body_that_is_not_json_is_explained_in_the_callers_words(raw, message):
    """Never the parser's own sentence ("Expecting value: line 1 column 1 (char 0)") or Python's (RecursionError)."""
    from model_api.errors import ApiError
    from model_api.requests import read_json_body

    with pytest.raises(ApiError) as caught:
        read_json_body({"body": raw}, 100_000, "{}")
    assert (caught.value.status, caught.value.message) == (400, message)


def test_a_byte_order_mark_before_the_json_is_ignored():
    from model_api.requests import read_json_body

    assert read_json_body({"body": "\ufeff{\"a\": 1}"}, 1000, "{}") == {"a": 1}


@pytest.mark.parametrize("data, message", [
    (b"GIF89a" + b"\0" * 64, "the model returned a PNG sequence that is not PNG files"),
    (b"\x89PNG\r\n\x1a\n" + b"\0\0\0\x0dIHDR", "the model returned a truncated PNG sequence"),
])
def test_png_sequences_that_do_not_parse_are_the_models_fault(data, message):
    from model_api.errors import ApiError
    from model_api.kinds.text_to_image import split_png_sequence

    with pytest.raises(ApiError) as caught:
        split_png_sequence(data)
    assert (caught.value.status, caught.value.code, caught.value.message) == (502, "bad_model_response", message)


def test_runtime_urls_of_china_regions_use_their_domain():
    from model_api.routes import ModelInfo

    info = ModelInfo("m", "embeddings", "ep")
    assert info.runtime_url("cn-north-1") == \
        "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/endpoints/ep/invocations"
    assert info.runtime_url("eu-west-1") == "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/ep/invocations"


class _Body:
    def __init__(self, data):
        self.data = data

    def read(self, limit):
        return self.data[:limit]


class _Runtime:
    def __init__(self, response):
        self.response = response

    def invoke_endpoint(self, **request):
        return self.response


def test_an_answer_without_a_content_type_reads_as_empty_and_an_oversized_one_is_refused():
    from model_api.aws import MAX_MODEL_RESPONSE_BYTES, SageMakerEndpoint
    from model_api.errors import ApiError

    endpoint = SageMakerEndpoint(_Runtime({"Body": _Body(b"{}")}), "ep")
    assert endpoint.invoke(b"{}", "application/json", "application/json") == (b"{}", "")
    endpoint = SageMakerEndpoint(_Runtime({"Body": _Body(b"x" * (MAX_MODEL_RESPONSE_BYTES + 1)),
                                           "ContentType": "image/png"}), "ep")
    with pytest.raises(ApiError) as caught:
        endpoint.invoke(b"{}", "application/json", "image/png")
    assert caught.value.message == "the model's answer is over the 6 MB real-time limit"


def test_runtime_client_timeouts_come_from_the_environment():
    from model_api.aws import sagemaker_runtime_client

    config = sagemaker_runtime_client({"AWS_REGION": "us-east-1", "INVOKE_CONNECT_TIMEOUT_SECONDS": "3",
                                       "INVOKE_READ_TIMEOUT_SECONDS": "17"}).meta.config
    assert (config.connect_timeout, config.read_timeout) == (3.0, 17.0)


def test_a_body_that_is_not_utf8_is_the_callers_400():
    import base64

    from model_api.errors import ApiError
    from model_api.requests import read_json_body

    with pytest.raises(ApiError) as caught:
        read_json_body({"body": base64.b64encode(b'{"prompt": "\xff"}').decode(), "isBase64Encoded": True}, 1000,
                       "{}")
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400, "invalid_request", "request body is not valid UTF-8")


def test_an_image_model_speaks_the_toolkit_protocol_unless_told_otherwise():
    from model_api.kinds.text_to_image import ImageConfig

    assert ImageConfig.from_env({}).protocol == "toolkit"
    assert ImageConfig.from_env({"MODEL_PROTOCOL": "jumpstart"}).protocol == "jumpstart"


def test_sts_client_signs_in_the_functions_region_with_bounded_retries(monkeypatch):
    from model_api.aws import sts_client

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    client = sts_client({"AWS_REGION": "eu-central-1"})
    assert client.meta.region_name == "eu-central-1"
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (2, 5, 3)


def test_duplicate_keys_are_refused_not_resolved():
    from model_api.errors import ApiError
    from model_api.requests import read_json_body

    with pytest.raises(ApiError) as caught:
        read_json_body({"body": '{"prompt": "", "prompt": "x"}'}, 1000, "{}")
    assert (caught.value.status, caught.value.message) == (
        400, 'request body is not valid JSON: the key "prompt" appears twice in one object')
    assert read_json_body({"body": '{"a": {"b": 1}, "b": 2}'}, 1000, "{}") == {"a": {"b": 1}, "b": 2}


def test_the_catalog_is_compact_json():
    from model_api.routes import ModelInfo, catalog_to_json

    text = catalog_to_json([ModelInfo("m", "embeddings", "e")])
    assert ", " not in text and ": " not in text  # every Lambda carries it in its 4 KB environment
