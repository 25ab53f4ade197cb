"""Kind text-generation: POST /generate {"inputs": "...", "parameters": {...}} -> {"generated_text": "..."}.

Served by Text Generation Inference ("tgi") or the HF inference container's text-generation pipeline ("pipeline").
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Iterator, Mapping

from model_api import streaming, text
from model_api.adapters import openai
from model_api.calls import ModelCall
from model_api.kinds.base import Action, Kind
from model_api.schema import NOT_BLANK, TextLimits

EXAMPLE = '{"inputs": "Once upon a time"}'


@lru_cache(maxsize=None)  # built once per set of limits; callers only read it
def generate_request_schema(limits: TextLimits, tgi: bool = True) -> dict:
    """POST /generate: {"inputs": "...", "parameters": {...}}."""
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "GenerateRequest",
        "type": "object",
        "properties": {
            "inputs": {"type": "string", "minLength": 1, "maxLength": limits.max_input_chars, "pattern": NOT_BLANK},
            "parameters": text.generation_parameters(limits, tgi),
            "stream": {"type": "boolean", "description": "true: the answer as server-sent events in TGI's shape, a "
                                                         "token at a time (a model deployed with streaming=true)"},
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }


def prepare_generate(event: Mapping, config: text.TextConfig, stream: bool = False) -> ModelCall:
    data = text.read_request(event, config, generate_request_schema(config.limits, tgi=config.protocol == "tgi"),
                             EXAMPLE)
    stream = stream or data.get("stream", False)
    if stream:
        text.allow_stream(config)
    # Only the new text by default (TGI and the pipeline would repeat the prompt for GPT-2 style models).
    parameters = {"max_new_tokens": config.limits.default_max_new_tokens, "return_full_text": False,
                  **data.get("parameters", {})}
    return text.json_call({"inputs": data["inputs"], "parameters": parameters}, **({"stream": True} if stream
                                                                                     else {}))


def prepare_generate_stream(event: Mapping, config: text.TextConfig) -> ModelCall:
    """POST /generate_stream (TGI's own streaming route): as /generate with stream true."""
    return prepare_generate(event, config, stream=True)


def finish_generate(body: bytes, meta: dict, content_type: str = "") -> dict:
    answer = text.answer_json(body, content_type)
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    details = answer.get("details") if isinstance(answer, dict) else None
    return {"generated_text": text.string_field(answer, "generated_text"),
            **({"details": details} if isinstance(details, dict) else {})}


def generate_tokens(call: ModelCall, config: text.TextConfig, endpoint) -> Iterator[streaming.Item]:
    """The answer's tokens: TGI streams them (the same body with "stream": true, and details for the finish reason
    and token count); the HF inference toolkit's pipeline answers at once."""
    if config.protocol != "tgi":
        return text.answered_at_once(finish_generate, "generated_text")(call, config, endpoint)
    body = json.loads(call.body)
    body["stream"] = True
    body["parameters"] = {**body.get("parameters", {}), "details": True}
    answer = endpoint.invoke_stream(json.dumps(body, separators=(",", ":")).encode(), call.content_type,
                                    call.accept)
    return _closing(streaming.tgi_tokens(answer), answer)


def _closing(items: Iterator[streaming.Item], answer) -> Iterator[streaming.Item]:
    """items, closing the model's stream however they end (finished, failed, or dropped by a caller gone)."""
    try:
        yield from items
    finally:
        answer.close()


def generate_events(items, meta: dict, request_id: str) -> Iterator[bytes]:
    return streaming.tgi_events(items)


GENERATE = Action(
    "generate", EXAMPLE, prepare_generate, finish_generate,
    smoke={"inputs": "The capital of France is", "parameters": {"max_new_tokens": 8}},
    smoke_invalid={"inputs": "x", "parameters": {"temperature": -1}},
    check=text.has_text("generated_text"),
    schema=lambda config: generate_request_schema(config.limits, tgi=config.protocol == "tgi"),
    response={"type": "object", "required": ["generated_text"], "properties": {
        "generated_text": {"type": "string"}, "request_id": {"type": "string"},
        "details": {"type": "object", "description": "TGI's, when asked with parameters.details"}}},
    stream_source=generate_tokens, stream_reply=generate_events,
)

# TGI's own streaming route (what its Python client's generate_stream posts to), on streaming models only.
GENERATE_STREAM = Action(
    "generate_stream", EXAMPLE, prepare_generate_stream, finish_generate,
    smoke=GENERATE.smoke, smoke_invalid=GENERATE.smoke_invalid, check=GENERATE.check,
    schema=GENERATE.schema, response={"type": "string", "description": "text/event-stream: TGI's StreamResponse "
                                                                        "events, a token each"},
    stream_source=generate_tokens, stream_reply=generate_events, stream_only=True,
)

V1_COMPLETIONS = openai.completions_action(GENERATE)  # /v1/completions

KIND = Kind(
    "text-generation", (GENERATE, GENERATE_STREAM, V1_COMPLETIONS), protocols=("tgi", "pipeline"),
    default_protocol=lambda model: "tgi" if model.container == "tgi" else "pipeline",
    # Invocations per instance per minute: about half of what one serves flat out (a short generation ~1 s), so a
    # second instance starts before requests queue; jobs waiting per instance for async hosting.
    target_invocations=30.0, target_backlog=20.0,
)
