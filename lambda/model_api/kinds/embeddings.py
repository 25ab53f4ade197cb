"""Kind embeddings: POST /embeddings {"inputs": "text" | ["t1", ...]} -> {"embeddings": [[...], ...], "dimensions"}.

Served by the HF inference container's feature-extraction pipeline ("pipeline": token vectors, mean-pooled here as
sentence-transformers does) or by our inference code ("toolkit": pooled there). Chat models embed with this action too.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Mapping

from model_api import text
from model_api.adapters import openai, tei
from model_api.calls import ModelCall
from model_api.errors import ApiError
from model_api.kinds.base import Action, Kind
from model_api.schema import NOT_BLANK, TextLimits

EXAMPLE = '{"inputs": ["a cyborg tiger", "a robot cat"]}'


@lru_cache(maxsize=None)  # built once per set of limits; callers only read it
def embeddings_request_schema(limits: TextLimits) -> dict:
    """POST /embeddings: {"inputs": "text" | ["t1", "t2", ...]}."""
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "EmbeddingsRequest",
        "type": "object",
        "properties": {
            "inputs": {
                "type": ["string", "array"], "minLength": 1, "maxLength": limits.max_input_chars,
                "pattern": NOT_BLANK, "minItems": 1, "maxItems": limits.max_batch_inputs,
                "items": {"type": "string", "minLength": 1, "maxLength": limits.max_input_chars,
                          "pattern": NOT_BLANK},
            },
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }


def prepare_embed(event: Mapping, config: text.TextConfig) -> ModelCall:
    data = text.read_request(event, config, embeddings_request_schema(config.limits), EXAMPLE)
    inputs = data["inputs"] if isinstance(data["inputs"], list) else [data["inputs"]]
    if config.protocol == "pipeline":
        # Truncation to the model's positions: what sentence-transformers does with long texts (MiniLM reads 256
        # word pieces, 512 positions), instead of the pipeline failing on them.
        return text.json_call({"inputs": inputs, "parameters": {"truncation": True}}, count=len(inputs),
                              protocol="pipeline")
    return text.json_call({"task": "embeddings", "inputs": inputs}, count=len(inputs), protocol="toolkit")


def finish_embed(body: bytes, meta: dict, content_type: str = "") -> dict:
    answer = text.answer_json(body, content_type)
    if meta["protocol"] != "pipeline":
        answer = answer.get("embeddings") if isinstance(answer, dict) else None
    vectors = pooled_vectors(answer, meta["count"])
    return {"embeddings": vectors, "dimensions": len(vectors[0])}


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


def check_embeddings(answer: dict, fetch) -> str:
    vectors = answer.get("embeddings") or []
    if len(vectors) != 2 or len({len(v) for v in vectors}) != 1:
        return "expected 2 vectors of one size"
    if any(abs(math.sqrt(sum(x * x for x in v)) - 1) > 1e-3 for v in vectors):
        return "vectors are not unit length"
    return ""


EMBEDDINGS = Action(
    "embeddings", EXAMPLE, prepare_embed, finish_embed,
    smoke={"inputs": ["a cyborg tiger", "a robot cat"]},
    smoke_invalid={"inputs": []},
    check=check_embeddings,
    schema=lambda config: embeddings_request_schema(config.limits),
    response={"type": "object", "required": ["embeddings", "dimensions"], "properties": {
        "embeddings": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                       "description": "one unit vector per input, in order"},
        "dimensions": {"type": "integer"}, "request_id": {"type": "string"}}},
)

# The same action in OpenAI's shape (/v1/embeddings) and TEI's (/embed: huggingface_hub's feature_extraction).
V1_EMBEDDINGS = openai.embeddings_action(EMBEDDINGS)
EMBED = tei.embed_action(EMBEDDINGS)

KIND = Kind(
    "embeddings", (EMBEDDINGS, V1_EMBEDDINGS, EMBED), protocols=("pipeline", "toolkit"),
    default_protocol=lambda model: "toolkit" if model.code else "pipeline",
    # About half of what one instance serves flat out (a batch ~50 ms); jobs waiting per instance for async.
    target_invocations=300.0, target_backlog=100.0,
    # A sentence-embeddings pipeline runs the real all-MiniLM-L6-v2 locally; our own code embeds with an LLM.
    local_stand_in=lambda model: "causal-lm" if model.code else "sentence-embeddings",
)
