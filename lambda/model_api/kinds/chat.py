"""Kind chat: POST /chat {"messages": [{"role", "content"}, ...], "parameters"} -> {"reply": "..."}, and embeddings
from the same model (POST /models/<model>/embeddings, model_api.kinds.embeddings). Served by our inference code
(models/chat_embeddings), which applies the model's chat template.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

from model_api import text
from model_api.adapters import openai
from model_api.calls import ModelCall
from model_api.kinds.base import Action, Kind
from model_api.kinds.embeddings import EMBED, EMBEDDINGS, V1_EMBEDDINGS
from model_api.schema import NOT_BLANK, SEED_MAX, TextLimits

EXAMPLE = '{"messages": [{"role": "user", "content": "Hello!"}]}'


@lru_cache(maxsize=None)  # built once per set of limits; callers only read it
def chat_request_schema(limits: TextLimits) -> dict:
    """POST /chat: {"messages": [{"role": "user", "content": "..."}, ...], "parameters": {...}}."""
    parameters = text.generation_parameters(limits, tgi=False)
    parameters["properties"]["seed"] = {"type": "integer", "minimum": 0, "maximum": SEED_MAX}
    parameters["properties"]["stop"] = text.STOP_SEQUENCES  # models/chat_embeddings: the reply ends before one
    del parameters["properties"]["return_full_text"]
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "ChatRequest",
        "type": "object",
        "properties": {
            "messages": {
                "type": "array", "minItems": 1, "maxItems": limits.max_messages,
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                        "content": {"type": "string", "minLength": 1, "maxLength": limits.max_input_chars,
                                    "pattern": NOT_BLANK},
                    },
                    "required": ["role", "content"],
                    "additionalProperties": False,
                },
            },
            "parameters": parameters,
        },
        "required": ["messages"],
        "additionalProperties": False,
    }


def prepare_chat(event: Mapping, config: text.TextConfig) -> ModelCall:
    data = text.read_request(event, config, chat_request_schema(config.limits), EXAMPLE)
    parameters = {"max_new_tokens": config.limits.default_max_new_tokens, **data.get("parameters", {})}
    return text.json_call({"task": "chat", "messages": data["messages"], "parameters": parameters})


def finish_chat(body: bytes, meta: dict, content_type: str = "") -> dict:
    return {"reply": text.string_field(text.answer_json(body, content_type), "reply")}


CHAT = Action(
    "chat", EXAMPLE, prepare_chat, finish_chat,
    smoke={"messages": [{"role": "user", "content": "Say hello."}], "parameters": {"max_new_tokens": 8}},
    smoke_invalid={"messages": [{"role": "robot", "content": "x"}]},
    check=text.has_text("reply"),
    schema=lambda config: chat_request_schema(config.limits),
    response={"type": "object", "required": ["reply"], "properties": {
        "reply": {"type": "string"}, "request_id": {"type": "string"}}},
    # Our inference code runs in the HF inference toolkit, which answers at once: a stream is the whole reply.
    stream_source=text.answered_at_once(finish_chat, "reply"),
)

V1_CHAT = openai.chat_action(CHAT)  # /v1/chat/completions

KIND = Kind(
    "chat", (CHAT, EMBEDDINGS, V1_CHAT, V1_EMBEDDINGS, EMBED), protocols=("toolkit",), default_protocol=lambda model: "toolkit",
    # As text generation: a short reply takes ~1 s.
    target_invocations=30.0, target_backlog=20.0,
    # models/chat/code's bounds.
    container_environment=lambda settings, model, request_seconds: {
        "CHAT_MAX_NEW_TOKENS": str(settings.max_new_tokens), "EMBEDDINGS_MAX_BATCH": str(settings.max_batch_inputs),
        "REQUEST_DEADLINE_SECONDS": str(request_seconds)},
)
