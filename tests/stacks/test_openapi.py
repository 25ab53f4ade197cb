"""The OpenAPI document (lambda/model_api/openapi.py): valid OpenAPI 3.1, every route and error status in it, its
schemas the very ones the Lambda validates with, and served by the gateway byte for byte."""

from __future__ import annotations

import json

import airspeed
import pytest
from jsonschema import Draft202012Validator
from model_api import errors as _errors
from model_api import kinds as _kinds
from model_api import routes as _routes
from openapi_spec_validator import validate

from deployment.settings import load_settings

EVERY_KIND = ["models=stable-diffusion,gpt2-tgi,minilm-embeddings,chat-embeddings,gpt2-cpu", "gpt2-cpu.hosting=async"]


@pytest.mark.parametrize("pairs", [[], EVERY_KIND, ["models=gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting=shared",
                                                   "minilm-embeddings.hosting=shared",
                                                   "minilm-embeddings.instance_type=ml.m5.xlarge"],
                                   ["models=jumpstart-stable-diffusion",
                                    "jumpstart-stable-diffusion.source=endpoint:js-sd"]],
                         ids=["default", "every-kind-and-async", "shared", "existing-endpoint"])
def test_the_document_is_valid_openapi_with_every_route_and_every_error_status(pairs):
    settings = load_settings(pairs)
    document = json.loads(settings.openapi_json())
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema (and its JSON Schema dialect)
    operations = {(path, method.upper()): op for path, item in document["paths"].items() for method, op in item.items()}
    expected = {(r.path, r.method) for r in _routes.routes(settings.model_infos())}
    assert set(operations) == expected
    # Every status of the error catalog (docs/errors.md) is one the document lists.
    assert {row.status for row in _errors.ERROR_CATALOG} <= set(_errors.ERROR_STATUSES)
    gateway_statuses = {status for status, _ in _errors.GATEWAY_ERRORS.values()}
    assert gateway_statuses <= set(_errors.ERROR_STATUSES)
    for key, operation in operations.items():
        assert {int(s) for s in operation["responses"] if s.startswith(("4", "5"))} == set(_errors.ERROR_STATUSES), key
        assert operation["security"] == [{"apiKey": []}, {"bearerKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header",
                                                                   "name": "x-api-key"}
    assert document["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"


def test_request_schemas_take_what_the_api_takes_and_refuse_what_it_refuses():
    settings = load_settings(EVERY_KIND)
    document = json.loads(settings.openapi_json())
    schemas = document["components"]["schemas"]
    checked = 0
    for path, item in document["paths"].items():
        body = item.get("post", {}).get("requestBody")
        if not body:
            continue
        content = body["content"]["application/json"]
        schema = {**schemas[content["schema"]["$ref"].rsplit("/", 1)[1]], "components": document["components"]}
        validator = Draft202012Validator(schema)  # its $refs point into the components carried along
        action = _kinds.actions()[next(r.action for r in _routes.routes(settings.model_infos())
                                       if r.path == path and r.method == "POST")]
        # An OpenAI body names its model (the smoke test adds the route's own): the document lists that name only.
        model = next(r.model for r in _routes.routes(settings.model_infos()) if r.path == path and r.method == "POST")
        named = {"model": model} if action.name.startswith("v1/") else {}
        assert validator.is_valid(content["example"]), path
        assert validator.is_valid({**action.smoke, **named}), path
        assert not validator.is_valid({**action.smoke_invalid, **named}), path
        if named:
            assert not validator.is_valid({**action.smoke, "model": model + "-other"}), path
        checked += 1
    assert checked >= 8


def test_the_schemas_follow_the_settings_limits():
    document = json.loads(load_settings(["max_size=640", "max_prompt_chars=300", "default_size=512"]).openapi_json())
    request = document["components"]["schemas"]["ImagesRequestStableDiffusion"]
    assert request["properties"]["width"]["maximum"] == 640
    assert request["properties"]["prompt"]["maxLength"] == 300
    assert "$schema" not in json.dumps(document)
    # GET /images documents its query string from the same schema.
    names = {p["name"] for p in document["paths"]["/images"]["get"]["parameters"]}
    assert names == set(request["properties"])
    # Draft 4's boolean exclusive bounds are numbers in OpenAPI 3.1's dialect.
    text = json.loads(load_settings(["models=gpt2-tgi"]).openapi_json())["components"]["schemas"][
        "GenerateRequestGpt2Tgi"]["properties"]["parameters"]["properties"]
    assert text["temperature"] == {"type": "number", "minimum": 0.01, "maximum": 100}
    assert text["top_p"] == {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}


def test_an_async_model_documents_its_jobs():
    document = json.loads(load_settings(EVERY_KIND).openapi_json())
    assert set(document["paths"]["/models/gpt2-cpu"]["post"]["responses"]) >= {"202"}
    assert "200" not in document["paths"]["/models/gpt2-cpu"]["post"]["responses"]
    job = document["paths"]["/jobs/{job_id}"]["get"]
    assert job["parameters"] == [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}]


def test_the_gateway_serves_the_document_byte_for_byte_keyless(synth):
    template = synth()
    methods = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"
               and r["Properties"]["Integration"]["Type"] == "MOCK"]
    assert len(methods) == 1 and methods[0]["ApiKeyRequired"] is False and methods[0]["HttpMethod"] == "GET"
    response = methods[0]["Integration"]["IntegrationResponses"][0]
    assert response["StatusCode"] == "200"
    rendered = airspeed.Template(response["ResponseTemplates"]["application/json"]).merge({})
    assert rendered == load_settings([]).openapi_json()
    assert template["Outputs"]["OpenApiUrl"]["Value"]["Fn::Join"][1][-1].endswith("/openapi.json")


def test_vtl_escaping_survives_dollars_hashes_and_comments():
    from stacks.rest_api import vtl_literal

    text = '{"$ref": "#/x", "c": "## not a comment", "v": "$input.body #if(1) \\\\$ ${x} #*block*#"}'
    assert airspeed.Template(vtl_literal(text)).merge({}) == text


def test_a_streaming_models_operations_document_their_event_streams():
    settings = load_settings(["models=stable-diffusion,gpt2-tgi,chat-embeddings,gpt2-cpu",
                              "stable-diffusion.streaming=true", "gpt2-tgi.streaming=true",
                              "chat-embeddings.streaming=true"])
    document = json.loads(settings.openapi_json())
    validate(document)

    def streamed(path):
        return document["paths"][path]["post"]["responses"]["200"]["content"].get("text/event-stream", {}).get(
            "schema", {}).get("description", "")

    assert "progress" in streamed("/models/stable-diffusion")
    assert "with stream true" in streamed("/generate") and "TGI's" in streamed("/generate_stream")
    assert "OpenAI's chunks" in streamed("/v1/completions") and "OpenAI's chunks" in streamed(
        "/models/chat-embeddings/v1/chat/completions")
    assert streamed("/models/chat-embeddings") == ""  # our own /chat answers whole
    assert streamed("/models/gpt2-cpu") == "" and "/models/gpt2-cpu/generate_stream" not in document["paths"]
