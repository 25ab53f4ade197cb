"""The OpenAPI 3.1 document of a deployment, made from the same route table (model_api.routes) and request schemas
(each kind's actions) the gateway, the Lambdas and local mode use, so it cannot drift from what they accept.

The stack writes it at synth (cdk.out/openapi.json) and serves it at GET /openapi.json (a mock integration: no
Lambda runs, no API key is asked); local mode serves the same bytes. Request schemas are JSON Schema draft 4 (the
dialect the validator and API Gateway models read): converted here to the 2020-12 dialect of OpenAPI 3.1.
"""

from __future__ import annotations

import copy
import json
from typing import Mapping, Sequence

from model_api.adapters.openai import PLACEHOLDER_MODELS
from model_api.errors import ERROR_STATUSES
from model_api.kinds import actions
from model_api.routes import OPENAI_MODEL, OPENAI_MODELS, OPENAPI_PATH, ModelInfo, routes  # noqa: F401 (OPENAPI_PATH re-exported)

API_KEY_HEADER = "x-api-key"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "description": "stable machine code (docs/errors.md)"},
        "message": {"type": "string", "description": "what is wrong and what to send instead"}}}},
}
JOB_SCHEMA = {
    "type": "object",
    "required": ["job_id", "status", "status_url"],
    "properties": {
        "job_id": {"type": "string", "description": "unguessable; the only way to read the job"},
        "status": {"type": "string", "enum": ["queued", "done", "failed"]},
        "status_url": {"type": "string"},
    },
    "description": "An async model's job: poll GET /jobs/{job_id} until it is done (the action's own body then) or "
                   "failed (an error body).",
}


def schema_2020(schema: dict) -> dict:
    """A draft-4 schema in OpenAPI 3.1's dialect: no $schema, boolean exclusive bounds as numbers."""
    out = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            node.pop("$schema", None)
            for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
                if node.get(bound) is True:
                    node[bound] = node.pop(limit)
                elif node.get(bound) is False:
                    node.pop(bound)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    return out


def exact(schema: dict, model: ModelInfo) -> dict:
    """A request schema as this deployment's model takes it: `model` (OpenAI's routes) names the model serving the
    route, or a client's placeholder (another is 404 model_not_found); `stream` of a model that does not stream
    is false only (true is 400 streaming_off)."""
    properties = schema.get("properties", {})
    out = {**schema, "properties": dict(properties)}
    if "model" in properties:
        out["properties"]["model"] = {**properties["model"], "enum": [model.name, *PLACEHOLDER_MODELS]}
    stream = properties.get("stream")
    if stream is not None and not model.streaming:
        out["properties"]["stream"] = {**stream, "enum": [False, *([None] if "null" in stream["type"] else [])],
                                       "description": "false only: this model's answers do not stream (deploy it "
                                                      "with -c <model>.streaming=true)"}
    return out


def _errors() -> dict:
    return {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in sorted(ERROR_STATUSES)}


def _query_parameters(schema: dict) -> list[dict]:
    """A GET action's query string: one parameter per field of its body schema (query values are text, converted
    to the field's type by the handler)."""
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": schema_2020(field)}
            for name, field in schema.get("properties", {}).items()]


# How a caller proves who it is, by the deployment's auth (stacks/rest_api.py): the schemes and each operation's
# security requirement (alternatives: any one of them).
SECURITY: dict[str, tuple[dict, list]] = {
    "api_key": ({"apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}}, [{"apiKey": []}]),
    "iam": ({"sigv4": {"type": "apiKey", "in": "header", "name": "Authorization",
                       "description": "AWS Signature Version 4 (service execute-api) of an IAM principal allowed "
                                      "execute-api:Invoke", "x-amazon-apigateway-authtype": "awsSigv4"}},
            [{"sigv4": []}]),
    "cognito": ({"cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                             "description": "an ID token of a user of the deployment's Cognito user pool"}},
                [{"cognito": []}]),
}
AUTH_TEXT = {"api_key": "Send the API key as x-api-key (or as Authorization: Bearer <key> where bearerKey is listed).",
             "iam": "Sign every request with AWS SigV4 (service execute-api).",
             "cognito": "Send a Cognito ID token in the Authorization header."}
BEARER_KEY = {"bearerKey": {"type": "http", "scheme": "bearer", "description": "the API key as a bearer token"}}


def document(models: Sequence[ModelInfo], configs: Mapping[str, object], title: str = "SageMaker Model API",
             version: str = "1", auth: str = "api_key", bearer_keys: bool = True) -> dict:
    """The OpenAPI document of these models; configs: model name -> its pipeline config (what its Lambda reads,
    model_api.kinds.Kind.config_from_env), which bounds its request schema; auth and bearer_keys: the
    deployment's (stacks/rest_api.py)."""
    schemes, security = SECURITY[auth]
    if auth == "api_key" and bearer_keys:
        schemes, security = {**schemes, **BEARER_KEY}, [*security, {"bearerKey": []}]
    by_name = actions()
    paths: dict[str, dict] = {}
    schemas = {"Error": ERROR_SCHEMA, "Job": JOB_SCHEMA}
    for route in routes(models):
        model = next(m for m in models if m.name == route.model)
        operation: dict = {"operationId": _operation_id(route.method, route.path),
                           "security": security, "tags": [model.name]}
        if route.action == OPENAI_MODELS:
            operation.update(summary="The models with OpenAI-compatible routes (OpenAI's model list)",
                             responses={"200": _json("The models", {"type": "object", "required": ["data"],
                                                                    "properties": {"data": {
                                                                        "type": "array", "items": MODEL_ENTRY}}})})
        elif route.action == OPENAI_MODEL:
            operation.update(summary="One model of the list (OpenAI's model object), or 404 model_not_found",
                             parameters=[{"name": "model_id", "in": "path", "required": True,
                                          "schema": {"type": "string"}}],
                             responses={"200": _json("The model", MODEL_ENTRY)})
        elif route.action == "catalog":
            operation.update(summary="Every model of this deployment", responses={"200": _json("The catalog", {
                "type": "object", "required": ["endpoints"], "additionalProperties": False,
                "properties": {"endpoints": {"type": "array", "items": {"type": "object"}}}})})
        elif route.action == "endpoint":
            operation.update(summary=f"The SageMaker endpoint of {model.name}",
                             responses={"200": _json("Where the model runs", {"type": "object"})})
        elif route.action == "job":
            operation.update(summary="An async job: its status, and when done the action's result",
                             parameters=[{"name": "job_id", "in": "path", "required": True,
                                          "schema": {"type": "string"}}],
                             responses={"200": _json("The job", {"$ref": "#/components/schemas/Job"})})
        else:
            action = by_name[route.action]
            name = _pascal(action.name)
            # A kind may leave its schema out (documented as any JSON object): it still deploys and serves.
            request = schema_2020(exact(action.schema_for(configs[model.name]), model))
            schemas[f"{name}Request{_pascal(model.name)}"] = request
            reference = {"$ref": f"#/components/schemas/{name}Request{_pascal(model.name)}"}
            if action.response is not None:
                schemas.setdefault(f"{name}Response", action.response)
            answer = {"$ref": f"#/components/schemas/{name}Response"} if action.response is not None else \
                {"type": "object"}
            operation["summary"] = f"{action.name} with {model.name} ({model.kind})"
            if route.method == "GET":
                operation["parameters"] = _query_parameters(request)
            else:
                example = json.loads(action.example)
                if "model" in example:  # the model this route serves (exact: the only name it takes)
                    example["model"] = model.name
                operation["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": reference, "example": example}}}
            operation["responses"] = {"202": _json("Queued as a job (the model is hosted async)",
                                                   {"$ref": "#/components/schemas/Job"})} if model.is_async else \
                {"200": _json("The result", answer)}
            if action.finish is None and action.adapter is None and not model.is_async:
                # Accept: image/png (or image/jpeg): the image itself, not stored (huggingface_hub's text_to_image).
                operation["responses"]["200"]["content"].update(
                    {media: {"schema": {"type": "string", "format": "binary"}}
                     for media in ("image/png", "image/jpeg")})
            streamed = _streamed(action, model)
            if streamed:
                events = {"text/event-stream": {"schema": {**SSE_EVENT, "description": streamed}}}
                content = operation["responses"]["200"]["content"]
                operation["responses"]["200"]["content"] = events if action.stream_only else {**content, **events}
        operation["responses"].update(_errors())
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Models on Amazon SageMaker behind API Gateway. " + AUTH_TEXT[auth] + " Every error "
                                "is {\"error\": {\"code\", \"message\"}} (on /v1 routes also OpenAI's type and "
                                "param)."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": schemes,
            "responses": {f"Error{status}": _json(description, {"$ref": "#/components/schemas/Error"})
                          for status, description in sorted(ERROR_STATUSES.items())},
        },
    }


# One server-sent event (each event of a text/event-stream answer, as OpenAPI 3.2's itemSchema reads one): its
# name and its data line (JSON, or OpenAI's [DONE]).
SSE_EVENT = {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string", "description": "message, or progress, result, error"},
    "data": {"type": "string", "description": "JSON (or [DONE], OpenAI's last event)"},
    "id": {"type": "string"}, "retry": {"type": "integer"}}}
MODEL_ENTRY = {"type": "object", "required": ["id", "object", "created", "owned_by"], "properties": {
    "id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
    "owned_by": {"type": "string"}, "kind": {"type": "string"}, "base_path": {"type": "string"}}}


def _streamed(action, model: ModelInfo) -> str:
    """How an action of a streaming model streams (lambda/stream_handler.py), or "" when it does not."""
    if not model.streaming or model.is_async:
        return ""
    if action.finish is None and action.adapter is None:
        return "with Accept: text/event-stream: `progress` events (elapsed_seconds, estimated_seconds), then a " \
               "`result` event holding the JSON answer"
    if action.adapter is not None and action.adapter.stream_reply is not None:
        return "with stream true: OpenAI's chunks, then data: [DONE]"
    if action.stream_reply is not None:
        return "TGI's StreamResponse events, a token each" + ("" if action.stream_only else " (with stream true)")
    return ""


def document_json(models: Sequence[ModelInfo], configs: Mapping[str, object], **kwargs) -> str:
    """The document as served: compact, keys in a stable order (the same bytes from the stack and local mode)."""
    return json.dumps(document(models, configs, **kwargs), separators=(",", ":"), ensure_ascii=False)


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").replace("/", "-").split("-"))


def _operation_id(method: str, path: str) -> str:
    parts = [p.strip("{}") for p in path.strip("/").split("/") if p]
    return method.lower() + "".join(_pascal(p) for p in parts)

