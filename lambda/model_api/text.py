"""The text pipelines: generation (TGI or the HF container's pipeline), embeddings and chat.

Pure like model_api.images: AWS is reached only through the Endpoint passed in.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Mapping

from model_api.errors import ApiError
from model_api.images import JSON, Endpoint
from model_api.jobs import ModelCall
from model_api.requests import read_json_body, validated
from model_api.routes import EXAMPLE_BODIES
from model_api.schema import (
    TextLimits,
    chat_request_schema,
    embeddings_request_schema,
    generate_request_schema,
    max_text_body_bytes,
)


@dataclass(frozen=True)
class TextConfig:
    limits: TextLimits = TextLimits()
    # text generation: "tgi" (Text Generation Inference) or "pipeline" (HF inference container, HF_TASK);
    # embeddings: "pipeline" (feature-extraction: token vectors, pooled here) or "toolkit" (our code, pooled there).
    protocol: str = "toolkit"

    def to_env(self) -> dict[str, str]:
        return {"TEXT_LIMITS": self.limits.to_json(), "MODEL_PROTOCOL": self.protocol}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TextConfig":
        return cls(limits=TextLimits.from_env(env), protocol=env.get("MODEL_PROTOCOL", "toolkit"))


def _request(event: Mapping, config: TextConfig, schema: dict, example: str) -> dict:
    return validated(read_json_body(event, max_text_body_bytes(config.limits), example), schema)


def _json_call(payload: dict, **meta) -> ModelCall:
    return ModelCall(json.dumps(payload, separators=(",", ":")).encode(), JSON, JSON, meta)


def _answer_json(body: bytes, content_type: str = ""):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(502, "bad_model_response", f"the model returned {content_type or 'a body'} that is not "
                                                  "JSON") from None


def run(call: ModelCall, endpoint: Endpoint, finish, request_id: str) -> dict:
    """A synchronous text request: send the call, shape the answer, add the request id."""
    body, content_type = endpoint.invoke(call.body, call.content_type, call.accept)
    return {**finish(body, call.meta, content_type), "request_id": request_id}


# ------------------------------------------------------------------------------------------------------ generate


def prepare_generate(event: Mapping, config: TextConfig) -> ModelCall:
    data = _request(event, config, generate_request_schema(config.limits, tgi=config.protocol == "tgi"),
                    EXAMPLE_BODIES["generate"])
    # Only the new text by default (TGI and the pipeline would repeat the prompt for GPT-2 style models).
    parameters = {"max_new_tokens": config.limits.default_max_new_tokens, "return_full_text": False,
                  **data.get("parameters", {})}
    return _json_call({"inputs": data["inputs"], "parameters": parameters})


def finish_generate(body: bytes, meta: dict, content_type: str = "") -> dict:
    answer = _answer_json(body, content_type)
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if not isinstance(answer, dict) or not isinstance(answer.get("generated_text"), str):
        raise ApiError(502, "bad_model_response", "the model's answer has no generated_text")
    return {"generated_text": answer["generated_text"]}


def generate_text(event: Mapping, config: TextConfig, endpoint: Endpoint, *, request_id: str) -> dict:
    return run(prepare_generate(event, config), endpoint, finish_generate, request_id)


# ------------------------------------------------------------------------------------------------------ embeddings


def prepare_embed(event: Mapping, config: TextConfig) -> ModelCall:
    data = _request(event, config, embeddings_request_schema(config.limits),
                    EXAMPLE_BODIES["embeddings"])
    inputs = data["inputs"] if isinstance(data["inputs"], list) else [data["inputs"]]
    if config.protocol == "pipeline":
        # Truncation to the model's positions: what sentence-transformers does with long texts (MiniLM reads 256
        # word pieces, 512 positions), instead of the pipeline failing on them.
        return _json_call({"inputs": inputs, "parameters": {"truncation": True}}, count=len(inputs),
                          protocol="pipeline")
    return _json_call({"task": "embeddings", "inputs": inputs}, count=len(inputs), protocol="toolkit")


def finish_embed(body: bytes, meta: dict, content_type: str = "") -> dict:
    answer = _answer_json(body, content_type)
    if meta["protocol"] != "pipeline":
        answer = answer.get("embeddings") if isinstance(answer, dict) else None
    vectors = pooled_vectors(answer, meta["count"])
    return {"embeddings": vectors, "dimensions": len(vectors[0])}


def embed(event: Mapping, config: TextConfig, endpoint: Endpoint, *, request_id: str) -> dict:
    return run(prepare_embed(event, config), endpoint, finish_embed, request_id)


def pooled_vectors(answer, count: int) -> list[list[float]]:
    """One unit-length vector per input. The feature-extraction pipeline answers token vectors per input
    ([1][tokens][dim] each); they are mean-pooled here, as sentence-transformers does. Vectors already pooled pass
    through. Anything else is the model's fault (502)."""
    if not isinstance(answer, list) or len(answer) != count:
        raise ApiError(502, "bad_model_response", f"the model returned no list of {count} embeddings")
    vectors = []
    for item in answer:
        while _depth(item) > 2 and len(item) == 1:
            item = item[0]
        depth = _depth(item)
        rows = item if depth == 2 else [item]
        if depth not in (1, 2) or not rows or not all(isinstance(r, list) and len(r) == len(rows[0]) for r in rows):
            raise ApiError(502, "bad_model_response", "the model returned embeddings of an unexpected shape")
        if not rows[0] or not all(_is_number(x) for row in rows for x in row):
            raise ApiError(502, "bad_model_response", "the model returned non-numeric embeddings")
        item = [sum(column) / len(rows) for column in zip(*rows)]
        norm = math.sqrt(sum(x * x for x in item))
        if norm == 0:
            raise ApiError(502, "bad_model_response", "the model returned a zero embedding")
        vectors.append([x / norm for x in item])
    if len({len(v) for v in vectors}) != 1:
        raise ApiError(502, "bad_model_response", "the model returned embeddings of different sizes")
    return vectors


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _depth(value) -> int:
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


# ------------------------------------------------------------------------------------------------------ chat


def prepare_chat(event: Mapping, config: TextConfig) -> ModelCall:
    data = _request(event, config, chat_request_schema(config.limits),
                    EXAMPLE_BODIES["chat"])
    parameters = {"max_new_tokens": config.limits.default_max_new_tokens, **data.get("parameters", {})}
    return _json_call({"task": "chat", "messages": data["messages"], "parameters": parameters})


def finish_chat(body: bytes, meta: dict, content_type: str = "") -> dict:
    answer = _answer_json(body, content_type)
    if not isinstance(answer, dict) or not isinstance(answer.get("reply"), str):
        raise ApiError(502, "bad_model_response", "the model's answer has no reply")
    return {"reply": answer["reply"]}


def chat(event: Mapping, config: TextConfig, endpoint: Endpoint, *, request_id: str) -> dict:
    return run(prepare_chat(event, config), endpoint, finish_chat, request_id)


# The asynchronous forms of each action: (prepare(event, config) -> ModelCall, finish(answer, meta) -> result).
JOB_ACTIONS = {"generate": (prepare_generate, finish_generate), "embeddings": (prepare_embed, finish_embed),
               "chat": (prepare_chat, finish_chat)}
