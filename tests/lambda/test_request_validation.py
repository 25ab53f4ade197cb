"""Our dependency-free draft-4 validator agrees with the jsonschema package on the request schema."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_api.kinds.text_to_image import image_request_schema, max_body_bytes
from model_api.schema import ImageLimits
from model_api.validation import validate

SCHEMA = image_request_schema(ImageLimits())
# Draft 4's keywords (boolean exclusive bounds), with an integer as every later draft reads it: 512.0 is one.
def _integral(checker, value) -> bool:
    return jsonschema.Draft6Validator.TYPE_CHECKER.is_type(value, "integer")


Draft4Integral = jsonschema.validators.extend(
    jsonschema.Draft4Validator, type_checker=jsonschema.Draft4Validator.TYPE_CHECKER.redefine("integer", _integral))
REFERENCE = Draft4Integral(SCHEMA)
FIELDS = list(SCHEMA["properties"]) + ["extra"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30) | st.sampled_from(["", " ", "a cyborg tiger", "\u00e9\u4e2d\U0001f600"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5,
)
near_valid_values = st.one_of(
    st.integers(-10, 2000), st.sampled_from([0, 8, 256, 512, 768, 776, 512.0, 7.5, 2**32 - 1, 2**32, True]),
    json_values,
)
requests = st.dictionaries(st.sampled_from(FIELDS), near_valid_values, max_size=6) | json_values


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(requests)
def test_agrees_with_jsonschema_draft4(instance):
    ours = validate(instance, SCHEMA)
    theirs = list(REFERENCE.iter_errors(instance))
    assert bool(ours) == bool(theirs), (instance, ours, [e.message for e in theirs])


def test_valid_request_has_no_problems():
    assert validate({"prompt": "p", "width": 512, "height": 768, "steps": 1, "guidance_scale": 0,
                     "seed": 0, "num_images": 4, "negative_prompt": ""}, SCHEMA) == []


def test_integral_numbers_are_integers_and_reach_the_model_as_ints():
    from model_api.validation import normalized

    assert validate({"prompt": "p", "width": 512.0, "seed": 354.0}, SCHEMA) == []
    assert validate({"prompt": "p", "width": 512.5}, SCHEMA) == ["width must be an integer (got 512.5)"]
    data = normalized({"prompt": "p", "width": 512.0, "seed": 354.0, "guidance_scale": 7, "extra": 1.0}, SCHEMA)
    assert data == {"prompt": "p", "width": 512, "seed": 354, "guidance_scale": 7.0, "extra": 1.0}
    assert [type(data[k]) for k in ("width", "seed", "guidance_scale", "extra")] == [int, int, float, float]
    # Through lists and nested objects, and where a field takes several types; true is never a number.
    schema = {"type": "object", "properties": {"n": {"type": ["integer", "null"]}, "xs": {
        "type": "array", "items": {"type": "object", "properties": {"t": {"type": "number"}}}},
        "b": {"type": "number"}}}
    data = normalized({"n": 2.0, "xs": [{"t": 1}, {"t": 0.5}], "b": True}, schema)
    assert data == {"n": 2, "xs": [{"t": 1.0}, {"t": 0.5}], "b": True}
    assert (type(data["n"]), type(data["xs"][0]["t"])) == (int, float)  # 1 == 1.0: the types tell
    assert type(normalized({"n": None}, schema)["n"]) is type(None)
    assert normalized([1], {"type": "array"}) == [1] and normalized(3, {"type": ["integer", "number"]}) == 3


def test_max_properties_says_what_the_object_must_be():
    assert validate({"a": 1}, {"type": "object", "maxProperties": 0, "description": "{} only"}) == [
        "body must be {} (got 1 fields; {} only)"]
    assert validate({"a": 1, "b": 2}, {"type": "object", "maxProperties": 1}) == [
        "body must have at most 1 fields (got 2)"]
    assert validate({}, {"type": "object", "maxProperties": 0}) == []


def test_null_is_a_type_of_its_own():
    assert validate(None, {"type": "null"}) == [] and validate({"a": None}, {"type": "object", "properties": {
        "a": {"type": ["string", "null"]}}}) == []
    assert validate(0, {"type": "null"}) and validate("", {"type": "null"})


def test_unsupported_keywords_are_refused_not_ignored():
    with pytest.raises(ValueError, match="unsupported keywords"):
        validate({}, {"type": "object", "oneOf": []})


def test_limits_round_trip_and_check_themselves():
    limits = ImageLimits(max_size=1024, max_images=2)
    assert ImageLimits.from_json(limits.to_json()) == limits
    assert ImageLimits.from_env({"REQUEST_LIMITS": limits.to_json()}) == limits
    assert ImageLimits.from_env({}) == ImageLimits()
    assert ImageLimits(min_size=1000).problems() == [
        "default_size must lie within min_size..max_size (1000..768)"]
    assert ImageLimits(max_size=1020).problems() == ["max_size must be a multiple of 8 (got 1020)"]
    assert max_body_bytes(ImageLimits()) == 4096 + 24 * 1000
    # 1 is a limit like any other (one image, one step); guidance has its own rule.
    assert ImageLimits(max_images=1, max_steps=1, default_steps=1, max_guidance_scale=1,
                       default_guidance_scale=1).problems() == []
    assert ImageLimits(default_guidance_scale=30).problems() == [
        "default_guidance_scale must not exceed max_guidance_scale"]


def test_the_image_config_reads_every_field_back_from_the_environment():
    from model_api.kinds.text_to_image import ImageConfig

    config = ImageConfig(url_ttl_seconds=120, key_prefix="pictures/", protocol="jumpstart", step_seconds=0.1,
                         time_budget_seconds=20.0, instance_type="ml.g5.xlarge")
    assert ImageConfig.from_env(config.to_env()) == config


def test_a_method_the_image_route_does_not_take_is_405():
    from lambda_rig import api_event
    from model_api.errors import ApiError
    from model_api.kinds.text_to_image import ImageConfig, prepare_images

    with pytest.raises(ApiError) as caught:
        prepare_images(api_event("PUT", {"prompt": "p"}), ImageConfig())
    assert (caught.value.status, caught.value.code) == (405, "method_not_allowed")
    assert caught.value.message == "method PUT is not allowed; use GET or POST"


@pytest.mark.parametrize("schema, instance, problem", [
    ({"type": "string", "minLength": 1}, "", "body must not be empty"),
    ({"type": "string", "minLength": 3}, "ab", "body must be at least 3 characters long"),
    ({"type": "string", "maxLength": 2}, "abc", "body must be at most 2 characters long (got 3)"),
    ({"type": "number", "maximum": 1, "exclusiveMaximum": True}, 1, "body must be less than 1 (got 1)"),
    ({"type": "number", "minimum": 1, "exclusiveMinimum": True}, 1, "body must be greater than 1 (got 1)"),
])
def test_length_bounds_are_named_with_their_number(schema, instance, problem):
    assert validate(instance, schema) == [problem]


def test_an_object_schema_without_properties_takes_any_keys_unless_it_refuses_extras():
    assert validate({"a": 1}, {"type": "object"}) == []
    assert validate({"a": 1}, {"type": "object", "additionalProperties": False}) != []


def test_every_problem_of_a_body_is_named_in_one_message_separated_by_semicolons():
    from model_api.errors import ApiError
    from model_api.requests import validated

    with pytest.raises(ApiError) as caught:
        validated({"prompt": "", "width": 7}, image_request_schema(ImageLimits()))
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert caught.value.message == "prompt must not be empty; width must be at least 256 (got 7); " \
                                   "width must be a multiple of 8 (got 7)"


def _parse(body=None, query=None):
    import json as json_module

    from model_api.kinds.text_to_image import parse_image_request

    event = {"httpMethod": "GET", "queryStringParameters": query} if query is not None else \
        {"httpMethod": "POST", "body": json_module.dumps(body)}
    return parse_image_request(event, ImageLimits())


def test_the_jumpstart_and_hugging_face_shapes_mean_the_same_request():
    ours = _parse({"prompt": "a cat", "steps": 20, "num_images": 2, "seed": 5, "width": 256})
    jumpstart = _parse({"prompt": "a cat", "num_inference_steps": 20, "num_images_per_prompt": 2, "seed": 5,
                        "width": 256})
    hugging_face = _parse({"inputs": "a cat", "parameters": {"num_inference_steps": 20, "num_images_per_prompt": 2,
                                                              "seed": 5, "width": 256}})
    query = _parse(query={"prompt": "a cat", "num_inference_steps": "20", "num_images_per_prompt": "2", "seed": "5",
                          "width": "256"})
    assert ours == jumpstart == hugging_face == query


@pytest.mark.parametrize("body, message", [
    ({"prompt": "a", "inputs": "b"}, "send the prompt as prompt or as inputs (Hugging Face style), not both"),
    ({"inputs": "a", "seed": 1, "parameters": {"seed": 2}}, "seed is given twice, at the top and in parameters"),
    ({"prompt": "a", "steps": 2, "num_inference_steps": 3}, "num_inference_steps and steps are the same field"),
    ({"prompt": "a", "parameters": {"steps": 2}}, "parameters go with inputs (Hugging Face style"),
    ({"inputs": "a", "parameters": [1]}, "parameters must be an object of the other fields"),
])
def test_a_field_given_twice_under_two_names_is_refused_by_name(body, message):
    from model_api.errors import ApiError

    with pytest.raises(ApiError) as caught:
        _parse(body)
    assert caught.value.status == 400 and message in caught.value.message


def test_an_alias_still_meets_the_fields_bounds():
    from model_api.errors import ApiError

    with pytest.raises(ApiError, match="steps must be at most 50"):
        _parse({"inputs": "a cat", "parameters": {"num_inference_steps": 500}})


def test_a_body_with_an_unpaired_surrogate_is_refused_as_text_not_a_crash():
    from model_api.errors import ApiError
    from model_api.requests import read_json_body

    with pytest.raises(ApiError) as refused:  # a str body as a proxy event may carry it, escaped or not
        read_json_body({"body": '{"prompt": "\ud800"}'}, 1000, "{}")
    assert (refused.value.status, refused.value.message) == (400, "request body is not valid UTF-8")
