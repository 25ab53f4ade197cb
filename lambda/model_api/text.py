"""What the text kinds share (model_api.kinds.text_generation, embeddings, chat): their config, reading a request,
the JSON model call, reading the model's JSON answer, and the synchronous run.

Pure like every pipeline: AWS is reached only through the Endpoint passed in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator, Mapping

from model_api import streaming
from model_api.calls import JSON, Endpoint, ModelCall
from model_api.errors import ApiError
from model_api.requests import read_json_body, validated
from model_api.schema import SEED_MAX, TextLimits

# The smallest temperature and repetition penalty a model is given. Both divide the logits (transformers'
# TemperatureLogitsWarper and RepetitionPenaltyLogitsProcessor; TGI's own warpers do the same), in float32: a real
# model's logits (|x| well under 1e3) divided by 0.01, and once more by 0.01, stay far below float32's 3.4e38, where
# 5e-324 (inside "greater than 0") overflows them to inf and sampling fails ("probability tensor contains inf, nan
# or element < 0", a 502). Our routes refuse less (400); OpenAI's temperature, where 0 means greedy, decodes
# greedily under it. tests/models/test_sampling_bounds.py shows both ends.
MIN_TEMPERATURE = 0.01
MIN_REPETITION_PENALTY = 0.01
MAX_SAMPLING_DIVISOR = 100  # the largest temperature and repetition penalty (flat sampling; no penalty beyond it)
STOP_SEQUENCES = {"type": "array", "maxItems": 4, "items": {"type": "string", "minLength": 1, "maxLength": 100},
                  "description": "up to 4 texts; the answer ends at the first"}


@dataclass(frozen=True)
class TextConfig:
    limits: TextLimits = TextLimits()
    # text generation: "tgi" (Text Generation Inference) or "pipeline" (HF inference container, HF_TASK);
    # embeddings: "pipeline" (feature-extraction: token vectors, pooled here) or "toolkit" (our code, pooled there).
    protocol: str = "toolkit"
    # The model's answers may stream (its function streams: lambda/stream_handler.py); off, a request that asks to
    # stream is refused.
    streaming: bool = False

    def to_env(self) -> dict[str, str]:
        return {"TEXT_LIMITS": self.limits.to_json(), "MODEL_PROTOCOL": self.protocol,
                **({"MODEL_STREAMING": "true"} if self.streaming else {})}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TextConfig":
        return cls(limits=TextLimits.from_env(env), protocol=env.get("MODEL_PROTOCOL", "toolkit"),
                   streaming=env.get("MODEL_STREAMING") == "true")


def max_text_body_bytes(limits: TextLimits) -> int:
    """Largest text request body worth parsing (JSON-escaped astral characters take 12 bytes each)."""
    return 4096 + 12 * limits.max_input_chars * max(limits.max_batch_inputs, limits.max_messages)


def body_limit(config: TextConfig) -> int:
    """The body limit of a text model's requests, from its config (what adapted routes read with)."""
    return max_text_body_bytes(config.limits)


def read_request(event: Mapping, config: TextConfig, schema: dict, example: str) -> dict:
    return validated(read_json_body(event, max_text_body_bytes(config.limits), example), schema)


def json_call(payload: dict, **meta) -> ModelCall:
    return ModelCall(json.dumps(payload, separators=(",", ":")).encode(), JSON, JSON, meta)


def answer_json(body: bytes, content_type: str = ""):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(502, "bad_model_response", f"the model returned {content_type or 'a body'} that is not "
                                                  "JSON") from None


def string_field(answer, name: str) -> str:
    """answer[name] when the model answered an object with that text; anything else is its fault (502)."""
    if not isinstance(answer, dict) or not isinstance(answer.get(name), str):
        raise ApiError(502, "bad_model_response", f"the model's answer has no {name}")
    return answer[name]


def has_text(name: str):
    """The smoke test's check of an answer that carries text under name."""
    return lambda answer, fetch: "" if isinstance(answer.get(name), str) else f"no {name}"


def run(call: ModelCall, endpoint: Endpoint, finish, request_id: str) -> dict:
    """A synchronous text request: send the call, shape the answer, add the request id."""
    if call.meta.get("stream"):  # only a streaming function (lambda/stream_handler.py) answers these
        raise ApiError(500, "misconfigured", "a streamed request reached a function that does not stream "
                                             "(deployment error)")
    body, content_type = endpoint.invoke(call.body, call.content_type, call.accept)
    return {**finish(body, call.meta, content_type), "request_id": request_id}


def allow_stream(config: TextConfig, model_field: str = "stream") -> None:
    """A request that asks to stream, to a model that does not: 400, saying how to turn it on."""
    if not config.streaming:
        raise ApiError(400, "streaming_off", f"{model_field} true: this model's answers do not stream; deploy it "
                                             "with -c <model>.streaming=true, or leave stream out for the whole "
                                             "answer at once")


def answered_at_once(finish, field: str):
    """A stream source (Action.stream_source) for a container that answers at once (the HF inference toolkit
    cannot stream): the whole answer as one token, then the finish."""
    def source(call: ModelCall, config: TextConfig, endpoint: Endpoint) -> Iterator[streaming.Item]:
        body, content_type = endpoint.invoke(call.body, call.content_type, call.accept)
        return streaming.whole(finish(body, call.meta, content_type)[field])
    return source


def generation_parameters(limits: TextLimits, tgi: bool) -> dict:
    """Generation parameters by TGI's own rules (0 < top_p < 1, top_k > 0), and temperature and repetition_penalty
    within what the model computes with (MIN_TEMPERATURE), so a caller gets our 400 instead of an opaque model
    error. seed and stop exist on TGI only."""
    properties = {
        "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": limits.max_new_tokens},
        "temperature": {"type": "number", "minimum": MIN_TEMPERATURE, "maximum": MAX_SAMPLING_DIVISOR},
        "top_p": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "exclusiveMaximum": True},
        "top_k": {"type": "integer", "minimum": 1, "maximum": 100000},
        "repetition_penalty": {"type": "number", "minimum": MIN_REPETITION_PENALTY,
                               "maximum": MAX_SAMPLING_DIVISOR},
        "do_sample": {"type": "boolean"},
        "return_full_text": {"type": "boolean"},
    }
    if tgi:
        properties["seed"] = {"type": "integer", "minimum": 0, "maximum": SEED_MAX}
        properties["details"] = {"type": "boolean", "description": "true: also how the answer ended (TGI's details: "
                                                                   "finish_reason, generated_tokens, seed)"}
        properties["stop"] = STOP_SEQUENCES
    return {"type": "object", "properties": properties, "additionalProperties": False}
