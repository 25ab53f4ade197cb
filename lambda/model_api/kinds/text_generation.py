"""Kind text-generation: POST /generate {"inputs": "...", "parameters": {...}} -> {"generated_text": "..."}.

Served by Text Generation Inference ("tgi") or the HF inference container's text-generation pipeline ("pipeline").
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

from model_api import text
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
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }


def prepare_generate(event: Mapping, config: text.TextConfig) -> ModelCall:
    data = text.read_request(event, config, generate_request_schema(config.limits, tgi=config.protocol == "tgi"),
                             EXAMPLE)
    # Only the new text by default (TGI and the pipeline would repeat the prompt for GPT-2 style models).
    parameters = {"max_new_tokens": config.limits.default_max_new_tokens, "return_full_text": False,
                  **data.get("parameters", {})}
    return text.json_call({"inputs": data["inputs"], "parameters": parameters})


def finish_generate(body: bytes, meta: dict, content_type: str = "") -> dict:
    answer = text.answer_json(body, content_type)
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    return {"generated_text": text.string_field(answer, "generated_text")}


GENERATE = Action(
    "generate", EXAMPLE, prepare_generate, finish_generate,
    smoke={"inputs": "The capital of France is", "parameters": {"max_new_tokens": 8}},
    smoke_invalid={"inputs": "x", "parameters": {"temperature": -1}},
    check=text.has_text("generated_text"),
    schema=lambda config: generate_request_schema(config.limits, tgi=config.protocol == "tgi"),
    response={"type": "object", "required": ["generated_text"], "properties": {
        "generated_text": {"type": "string"}, "request_id": {"type": "string"}}},
)

V1_COMPLETIONS = openai.completions_action(GENERATE)  # /v1/completions

KIND = Kind(
    "text-generation", (GENERATE, V1_COMPLETIONS), protocols=("tgi", "pipeline"),
    default_protocol=lambda model: "tgi" if model.container == "tgi" else "pipeline",
    # Invocations per instance per minute: about half of what one serves flat out (a short generation ~1 s), so a
    # second instance starts before requests queue; jobs waiting per instance for async hosting.
    target_invocations=30.0, target_backlog=20.0,
)
