"""The OpenAI API's shapes under /v1 (and /models/<name>/v1): images/generations, embeddings, chat/completions,
completions and models, so the official openai SDK works with base_url set to the API's /v1.

Decisions (docs/api.md, "OpenAI-compatible routes"):
- `model` is required where OpenAI requires it (not for images, where the route's model serves a body without
  one), and must name the model that serves the route: /v1/<route> is served by the deployment's first model
  offering the action (as /images, /embeddings, ...), every model also at /models/<name>/v1/<route>; another name is
  404 model_not_found saying where that model answers. A client's placeholder name (PLACEHOLDER_MODELS) is the
  route's model.
- Images are stored and answered as presigned URLs (response_format url, the default); b64_json is refused: the
  API never returns image bytes in JSON.
- embeddings answer float lists or, with encoding_format base64 (what the SDK asks for by default), little-endian
  float32 arrays in base64, as OpenAI does.
- stream true (completions and chat) answers OpenAI's server-sent events, chunk by chunk, then `data: [DONE]`, on a
  model deployed with streaming=true (lambda/stream_handler.py; model_api.streaming writes the chunks); elsewhere it
  is refused with 400 streaming_off. n is 1; token counts in usage are 0 (the containers do not report them) but
  for a streamed TGI answer's completion tokens; finish_reason is "stop" unless a stream says "length".
- Our own fields an OpenAI body has no name for (negative_prompt, steps, guidance_scale, seed on images) may be sent
  as extra fields (the SDK's extra_body).
- Errors on these routes carry OpenAI's type and param beside our code and message (model_api.errors).
"""

from __future__ import annotations

import base64
import struct
import time
from functools import partial
from typing import Any, Optional, Sequence

from model_api.actions import Action, Adapter, adapted_action
from model_api.errors import ApiError
from model_api.requests import validated
from model_api.schema import NOT_BLANK, SEED_MAX
from model_api.streaming import openai_chat_events, openai_completion_events
from model_api.text import MIN_TEMPERATURE, allow_stream, body_limit
from model_api.validation import shown

PREFIX = "v1/"  # action names: /v1/<route> and /models/<name>/v1/<route>
OWNED_BY = "sagemaker-model-api"
USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}  # not counted: see the module doc
MODEL_FIELD = {"type": "string", "minLength": 1, "maxLength": 256,
               "description": "the name of the model serving this route (GET /v1/models)"}
USER_FIELD = {"type": "string", "maxLength": 256, "description": "accepted and ignored"}
ONE = {"type": "integer", "enum": [1], "description": "one choice per request"}
STREAM = {"type": "boolean", "description": "true: server-sent events, chunk by chunk, then data: [DONE] (a model "
                                             "deployed with streaming=true)"}
STREAM_OPTIONS = {"type": "object", "properties": {"include_usage": {"type": "boolean"}},
                  "additionalProperties": False, "description": "read with stream true, ignored without"}
MAX_PARTS = 8  # text parts of one chat message
TEMPERATURE = {"type": "number", "minimum": 0, "maximum": 2,
               "description": f"0 (or under {MIN_TEMPERATURE}): greedy decoding"}
TOP_P = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1}
# Fields the models cannot honor, accepted at the value that asks for nothing (what frameworks built on the openai
# SDK send by default: LangChain's BaseOpenAI._default_params has frequency_penalty and presence_penalty 0 and
# logit_bias {}), refused clearly at any other.
NEUTRAL = {
    "frequency_penalty": {"type": "number", "enum": [0], "description": "0 only: the models apply no frequency "
                                                                          "penalty (/generate and /chat take "
                                                                          "repetition_penalty)"},
    "presence_penalty": {"type": "number", "enum": [0], "description": "0 only: the models apply no presence "
                                                                         "penalty"},
    "logit_bias": {"type": "object", "maxProperties": 0, "description": "{} only: the models take no logit bias"},
}
# Images: our fields an OpenAI body has no name for, accepted as they are.
IMAGE_EXTRAS = ("negative_prompt", "steps", "guidance_scale", "seed")


def _object(properties: dict, required: Sequence[str], title: str) -> dict:
    """An OpenAI request body: `null` for an optional field means unset, as in OpenAI's own API (the SDK and the
    frameworks on it send "seed": null), so every optional field also takes null (_request drops them)."""
    return {"$schema": "http://json-schema.org/draft-04/schema#", "title": title, "type": "object",
            "properties": {name: field if name in required else nullable(field)
                           for name, field in properties.items()},
            "required": list(required), "additionalProperties": False}


def nullable(field: dict) -> dict:
    """field, also taking null."""
    out = dict(field)
    kinds = field.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        out["type"] = kinds if "null" in kinds else [*kinds, "null"]
    if "enum" in field and None not in field["enum"]:
        out["enum"] = [*field["enum"], None]
    return out


# Names a client sends when it does not know the model's: huggingface_hub's InferenceClient(model=<url>) sends
# "dummy" (huggingface_hub/inference/_providers/hf_inference.py), and TGI's own Messages API examples "tgi". Each is
# served by the route's model, as TGI serves any name.
PLACEHOLDER_MODELS = ("dummy", "tgi")


def _served(data: dict, model: Optional[str]) -> None:
    """A named model must be the route's (OpenAI's images API lets a body leave it out: the route's serves it)."""
    asked = data.get("model")
    if model is not None and asked is not None and asked != model and asked not in PLACEHOLDER_MODELS:
        raise ApiError(404, "model_not_found",
                       f"the model {shown(asked[:80])} is not served at this route, which serves {shown(model)}; GET "
                       f"/v1/models lists the models, and each answers at /models/<name>/v1 too")


def _request(data: Any, schema: dict, model: Optional[str]) -> dict:
    """The body, valid, its numbers in their fields' types, and without the fields sent as null (unset)."""
    data = validated(data, schema)
    data = {name: value for name, value in data.items() if value is not None}
    _served(data, model)
    return data


def _max_tokens(data: dict) -> dict:
    """max_completion_tokens (OpenAI's newer name) wins over max_tokens when both come, as vLLM reads them
    (vllm/entrypoints/openai/protocol.py: `self.max_completion_tokens or self.max_tokens`)."""
    value = data.get("max_completion_tokens", data.get("max_tokens"))
    return {} if value is None else {"max_new_tokens": value}


def _sampling(data: dict) -> dict:
    """OpenAI's sampling fields as the model's: temperature 0 is greedy (TGI and transformers refuse 0), and so is
    one under MIN_TEMPERATURE (sampling that cold is greedy, and colder overflows the logits); top_p 1 is no
    nucleus filter (TGI refuses 1)."""
    out: dict = {}
    if "temperature" in data:
        if data["temperature"] < MIN_TEMPERATURE:
            out["do_sample"] = False
        else:
            out.update(temperature=data["temperature"], do_sample=True)
    if data.get("top_p", 1) < 1:
        out["top_p"] = data["top_p"]
    return out


def _reply_head(id_prefix: str, object_name: str, keep: dict, result: dict) -> dict:
    """OpenAI's id (prefix and our request id), object, created and model of a completion."""
    return {"id": f"{id_prefix}-{result['request_id']}", "object": object_name, "created": keep["created"],
            "model": keep["model"]}


def _keep(model: Optional[str], **more) -> dict:
    return {"model": model, "created": int(time.time()), **more}


def _streamed(data: dict, config) -> dict:
    """What a stream needs kept (stream, include_usage), after refusing a stream the model cannot give."""
    if not data.get("stream"):
        return {}
    allow_stream(config)
    return {"stream": True, "include_usage": bool((data.get("stream_options") or {}).get("include_usage"))}


def _stream_head(id_prefix: str, keep: dict, request_id: str) -> dict:
    return {"id": f"{id_prefix}-{request_id}", "created": keep["created"], "model": keep["model"]}


# ------------------------------------------------------------------------------------------------------ images
# Each adapter's pieces are module functions, bound to the action they adapt with functools.partial: called per
# request, never defined per call (and so attributed to the tests that reach them, by coverage and by make mutation).


def images_schema(base: Action, config) -> dict:
    ours = base.schema_for(config)["properties"]
    properties = {
        "model": MODEL_FIELD,
        "prompt": ours["prompt"],
        "n": {**ours["num_images"], "description": "images to make"},
        "size": {"type": "string", "pattern": size_pattern(config.limits),
                 "description": f"auto ({config.limits.default_size}x{config.limits.default_size}) or WIDTHxHEIGHT "
                                f"such as 512x512, each side a multiple of 8 from {config.limits.min_size} to "
                                f"{config.limits.max_size}"},
        "response_format": {"type": "string", "enum": ["url"],
                            "description": "url only: images are stored and answered as presigned URLs, never as "
                                           "b64_json"},
        "user": USER_FIELD,
        **{name: ours[name] for name in IMAGE_EXTRAS},
    }
    # OpenAI's images API does not require model (its default serves): here the route's model does.
    return _object(properties, ["prompt"], "OpenAIImagesRequest")


def size_pattern(limits) -> str:
    """auto, or WIDTHxHEIGHT with each side one the model makes (a multiple of 8 within the limits), exactly."""
    sides = "|".join(str(side) for side in range(limits.min_size, limits.max_size + 1, 8))
    return f"^(auto|({sides})x({sides}))$"


def images_translate(base: Action, data, model: Optional[str], config) -> tuple[dict, dict]:
    data = _request(data, images_schema(base, config), model)
    ours = {"prompt": data["prompt"], "num_images": data.get("n", 1),
            **{name: data[name] for name in IMAGE_EXTRAS if name in data}}
    size = data.get("size", "auto")
    if size != "auto":
        width, height = (int(side) for side in size.split("x"))  # size_pattern: sides the model makes
        ours.update(width=width, height=height)
    return ours, _keep(model)


def images_reply(result: dict, keep: dict) -> dict:
    return {"created": keep["created"],
            "data": [{"url": image["url"], "revised_prompt": None, "expires_at": image["expires_at"]}
                     for image in result["images"]],
            "seed": result["seed"], "request_id": result["request_id"]}


def images_check(base: Action, answer: dict, fetch) -> str:
    """The smoke test's check: the image route's own, on the URLs of OpenAI's answer."""
    return base.check({"images": [{"url": d.get("url"), "key": "/v1 image"} for d in answer.get("data") or []]},
                      fetch)


IMAGES_RESPONSE = {"type": "object", "required": ["created", "data"], "properties": {
    "created": {"type": "integer"},
    "data": {"type": "array", "items": {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string", "description": "presigned GET"}, "expires_at": {"type": "string"}}}},
    "seed": {"type": "integer"}, "request_id": {"type": "string"}}}


def images_action(base: Action, body_limit) -> Action:
    """body_limit: config -> the image route's own body limit."""
    adapter = Adapter(base.name, partial(images_translate, base), images_reply, body_limit, errors="openai")
    return adapted_action(
        PREFIX + "images/generations", '{"model": "stable-diffusion", "prompt": "a cyborg tiger"}', base, adapter,
        smoke={"prompt": "a red apple on a wooden table", "size": "256x256", "steps": 4, "seed": 7},
        smoke_invalid={"prompt": "x", "size": "100000x100000"},
        check=partial(images_check, base), schema=partial(images_schema, base), response=IMAGES_RESPONSE)


# -------------------------------------------------------------------------------------------------- embeddings


def embeddings_schema(base: Action, config) -> dict:
    inputs = dict(base.schema_for(config)["properties"]["inputs"])
    inputs["description"] = "text, or a list of texts (token ids are not served)"
    return _object({"model": MODEL_FIELD, "input": inputs,
                    "encoding_format": {"type": "string", "enum": ["float", "base64"]}, "user": USER_FIELD},
                   ["model", "input"], "OpenAIEmbeddingsRequest")


def float32_base64(vector: Sequence[float]) -> str:
    """OpenAI's base64 encoding of an embedding: little-endian float32 values."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_translate(base: Action, data, model: Optional[str], config) -> tuple[dict, dict]:
    if isinstance(data, dict) and isinstance(data.get("input"), list) and any(
            isinstance(item, (int, list)) and not isinstance(item, bool) for item in data["input"]):
        raise ApiError(400, "invalid_request", "input must be text or a list of texts; token ids (integers, or "
                                               "lists of them) are not served: send the text itself")
    data = _request(data, embeddings_schema(base, config), model)
    return {"inputs": data["input"]}, _keep(model, format=data.get("encoding_format", "float"))


def embeddings_reply(result: dict, keep: dict) -> dict:
    encode = float32_base64 if keep["format"] == "base64" else list
    return {"object": "list", "model": keep["model"], "usage": {"prompt_tokens": 0, "total_tokens": 0},
            "data": [{"object": "embedding", "index": i, "embedding": encode(vector)}
                     for i, vector in enumerate(result["embeddings"])],
            "request_id": result["request_id"]}


def embeddings_check(base: Action, answer: dict, fetch) -> str:
    return base.check({"embeddings": [d.get("embedding") for d in answer.get("data") or []]}, fetch)


EMBEDDINGS_RESPONSE = {"type": "object", "required": ["object", "data", "model"], "properties": {
    "object": {"const": "list"}, "model": {"type": "string"},
    "data": {"type": "array", "items": {"type": "object", "properties": {
        "index": {"type": "integer"},
        "embedding": {"type": ["array", "string"], "description": "floats, or base64 float32"}}}}}}


def embeddings_action(base: Action) -> Action:
    adapter = Adapter(base.name, partial(embeddings_translate, base), embeddings_reply, body_limit,
                      errors="openai")
    return adapted_action(
        PREFIX + "embeddings", '{"model": "minilm", "input": ["a cyborg tiger", "a robot cat"]}', base, adapter,
        smoke={"input": ["a cyborg tiger", "a robot cat"], "encoding_format": "float"},
        smoke_invalid={"input": []},
        check=partial(embeddings_check, base), schema=partial(embeddings_schema, base),
        response=EMBEDDINGS_RESPONSE)


# -------------------------------------------------------------------------------------------------------- chat


def chat_schema(base: Action, config) -> dict:
    limits = config.limits
    content = {"type": "string", "minLength": 1, "maxLength": limits.max_input_chars, "pattern": NOT_BLANK}
    # A message's parts are joined into one text of at most max_input_chars: each part gets its share, so whatever
    # the document allows is served.
    part_text = {**content, "maxLength": max(1, limits.max_input_chars // MAX_PARTS)}
    part = {"type": "object", "properties": {"type": {"type": "string", "enum": ["text"]}, "text": part_text},
            "required": ["type", "text"], "additionalProperties": False}
    message = {"type": "object", "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
        "content": {**content, "type": ["string", "array"], "minItems": 1, "maxItems": MAX_PARTS, "items": part,
                    "description": f"text, or up to {MAX_PARTS} text parts of at most 1/{MAX_PARTS} of it each"},
        "name": {"type": "string", "maxLength": 64}},
        "required": ["role", "content"], "additionalProperties": False}
    tokens = {"type": "integer", "minimum": 1, "maximum": limits.max_new_tokens}
    model_parameters = base.schema_for(config)["properties"]["parameters"]["properties"]
    return _object({
        "model": MODEL_FIELD,
        "messages": {"type": "array", "minItems": 1, "maxItems": limits.max_messages, "items": message},
        "max_tokens": tokens, "max_completion_tokens": tokens, "temperature": TEMPERATURE, "top_p": TOP_P,
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX}, "n": ONE, "stream": STREAM,
        "stream_options": STREAM_OPTIONS, "user": USER_FIELD, "stop": _stop(model_parameters["stop"]), **NEUTRAL,
        "logprobs": {"type": "boolean", "enum": [False], "description": "false only: token log-probabilities are "
                                                                         "not served"},
    }, ["model", "messages"], "OpenAIChatCompletionRequest")


def _stop(stop: dict) -> dict:
    """OpenAI's stop: one text, or a list of them (the model's own field is the list)."""
    return {**stop["items"], **stop, "type": ["string", "array"]}


def _stops(data: dict) -> dict:
    if "stop" not in data:
        return {}
    return {"stop": [data["stop"]] if isinstance(data["stop"], str) else data["stop"]}


def _text(content) -> str:
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def chat_translate(base: Action, data, model: Optional[str], config) -> tuple[dict, dict]:
    data = _request(data, chat_schema(base, config), model)
    messages = [{"role": "system" if m["role"] == "developer" else m["role"], "content": _text(m["content"])}
                for m in data["messages"]]
    parameters = {**_max_tokens(data), **_sampling(data), **({"seed": data["seed"]} if "seed" in data else {}),
                  **_stops(data)}
    return {"messages": messages, **({"parameters": parameters} if parameters else {})}, _keep(
        model, **_streamed(data, config))


def chat_stream(items, keep: dict, request_id: str):
    return openai_chat_events(items, _stream_head("chatcmpl", keep, request_id), keep.get("include_usage", False))


def chat_reply(result: dict, keep: dict) -> dict:
    return {**_reply_head("chatcmpl", "chat.completion", keep, result), "usage": USAGE,
            "request_id": result["request_id"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result["reply"]},
                         "finish_reason": "stop", "logprobs": None}]}


# The answers' schemas (documentation: the OpenAPI document), as data.
_COMPLETION = {"id": {"type": "string"}, "created": {"type": "integer"}, "model": {"type": "string"},
               "choices": {"type": "array"}}
CHAT_COMPLETION_RESPONSE = {"type": "object", "required": ["id", "object", "choices"],
                            "properties": {**_COMPLETION, "object": {"const": "chat.completion"}}}
TEXT_COMPLETION_RESPONSE = {"type": "object", "required": ["id", "object", "choices"],
                            "properties": {**_COMPLETION, "object": {"const": "text_completion"}}}


def has_choice(field: str, answer: dict, fetch) -> str:
    """The smoke test's check of a completion: text in choices[0].<field> (a message's content, or text)."""
    choices = answer.get("choices") or [{}]
    value = choices[0].get(field)
    text = value.get("content") if isinstance(value, dict) else value
    return "" if isinstance(text, str) else f"no choices[0].{field}"


def chat_action(base: Action) -> Action:
    adapter = Adapter(base.name, partial(chat_translate, base), chat_reply, body_limit, errors="openai",
                      stream_reply=chat_stream)
    return adapted_action(
        PREFIX + "chat/completions", '{"model": "chat", "messages": [{"role": "user", "content": "Hello!"}]}',
        base, adapter,
        smoke={"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8},
        smoke_invalid={"messages": [{"role": "robot", "content": "x"}]},
        check=partial(has_choice, "message"), schema=partial(chat_schema, base),
        response=CHAT_COMPLETION_RESPONSE)


# ------------------------------------------------------------------------------------------------- completions


def completions_schema(base: Action, config) -> dict:
    ours = base.schema_for(config)["properties"]
    prompt = {**ours["inputs"], "type": ["string", "array"], "minItems": 1, "maxItems": 1, "items": ours["inputs"],
              "description": "one prompt (a list of one is accepted; batches are not served)"}
    model_parameters = ours["parameters"]["properties"]
    properties = {"model": MODEL_FIELD, "prompt": prompt,
                  "max_tokens": {"type": "integer", "minimum": 1, "maximum": config.limits.max_new_tokens},
                  "temperature": TEMPERATURE, "top_p": TOP_P, "n": ONE, "stream": STREAM,
                  "stream_options": STREAM_OPTIONS,
                  "echo": {"type": "boolean", "description": "true: the prompt and the completion"},
                  "user": USER_FIELD, **NEUTRAL,
                  "best_of": {**ONE, "description": "1 only: one candidate per request"},
                  "logprobs": {"type": "null", "description": "null only: token log-probabilities are not served"}}
    if "seed" in model_parameters:  # what the model's container takes (TGI: seed and stop)
        properties["seed"] = model_parameters["seed"]
    if "stop" in model_parameters:
        properties["stop"] = _stop(model_parameters["stop"])
    return _object(properties, ["model", "prompt"], "OpenAICompletionRequest")


def completions_translate(base: Action, data, model: Optional[str], config) -> tuple[dict, dict]:
    data = _request(data, completions_schema(base, config), model)
    prompt = data["prompt"] if isinstance(data["prompt"], str) else data["prompt"][0]
    parameters = {**_max_tokens(data), **_sampling(data)}
    if "echo" in data:
        parameters["return_full_text"] = data["echo"]
    if "seed" in data:
        parameters["seed"] = data["seed"]
    parameters.update(_stops(data))
    stream = _streamed(data, config)
    if stream and data.get("echo"):
        stream["prefix"] = prompt  # a stream of new tokens: the prompt goes first
    return {"inputs": prompt, **({"parameters": parameters} if parameters else {})}, _keep(model, **stream)


def completions_stream(items, keep: dict, request_id: str):
    return openai_completion_events(items, _stream_head("cmpl", keep, request_id), keep.get("prefix", ""),
                                    keep.get("include_usage", False))


def completions_reply(result: dict, keep: dict) -> dict:
    return {**_reply_head("cmpl", "text_completion", keep, result), "usage": USAGE,
            "request_id": result["request_id"],
            "choices": [{"index": 0, "text": result["generated_text"], "finish_reason": "stop", "logprobs": None}]}


def completions_action(base: Action) -> Action:
    adapter = Adapter(base.name, partial(completions_translate, base), completions_reply, body_limit,
                      errors="openai", stream_reply=completions_stream)
    return adapted_action(
        PREFIX + "completions", '{"model": "gpt2", "prompt": "Once upon a time"}', base, adapter,
        smoke={"prompt": "The capital of France is", "max_tokens": 8},
        smoke_invalid={"prompt": "x", "temperature": -1},
        check=partial(has_choice, "text"), schema=partial(completions_schema, base),
        response=TEXT_COMPLETION_RESPONSE)


# ------------------------------------------------------------------------------------------------------ models

def models_list(models: Sequence[tuple[str, str]]) -> dict:
    """GET /v1/models: (name, kind) of each model with OpenAI routes, as OpenAI lists models."""
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": OWNED_BY,
                                        "kind": kind, "base_path": f"/models/{name}/v1"} for name, kind in models]}
