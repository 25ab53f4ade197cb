"""Chat and embeddings from one causal LLM, for the SageMaker Hugging Face inference container (toolkit hooks).

The request chooses the task:
  {"task": "chat", "messages": [{"role": "user", "content": "..."}], "parameters": {"max_new_tokens", "temperature",
   "top_p", "top_k", "repetition_penalty", "do_sample", "seed"}}  ->  {"reply": "..."}
  {"task": "embeddings", "inputs": ["text", ...]}  ->  {"embeddings": [[...], ...]}: the last hidden state,
   mean-pooled over real tokens (padding masked out) and L2-normalised.
One model in memory serves both, as the well-known ChatGLM-6B custom API does. The API validates requests first;
the bounds here protect the container from any other caller.
"""

from __future__ import annotations

import json
import math
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MAX_NEW_TOKENS = int(os.environ.get("CHAT_MAX_NEW_TOKENS", "1024"))
DEFAULT_NEW_TOKENS = 128  # a request without max_new_tokens; capped by MAX_NEW_TOKENS
MAX_INPUT_TOKENS = int(os.environ.get("CHAT_MAX_INPUT_TOKENS", "4096"))
MAX_BATCH = int(os.environ.get("EMBEDDINGS_MAX_BATCH", "32"))
# The Lambda stops waiting for a reply after its request time; the stack sets this a second later, and generation
# stops there (transformers' max_time) instead of finishing a reply nobody reads. 0: no deadline.
REQUEST_DEADLINE_SECONDS = float(os.environ.get("REQUEST_DEADLINE_SECONDS", "0"))
GENERATION = {"max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "do_sample", "seed", "stop"}
# The API's bounds (lambda/model_api/text.py generation_parameters; tests/models/test_chat_embeddings_inference.py
# keeps them equal): what the model computes with. A temperature or repetition penalty divides the logits, and one
# near 0 overflows them ("probability tensor contains inf, nan or element < 0").
NUMBERS = {"temperature": (0.01, 100.0), "repetition_penalty": (0.01, 100.0)}
INTEGERS = {"max_new_tokens": None, "top_k": (1, 100000), "seed": (0, 2**32 - 1)}
MAX_STOPS = 4
ROLES = {"system", "user", "assistant"}


# The toolkit answers 400 for every exception, its own faults included; a message starting with this marks the
# caller's mistake, which the API passes on as its own 400 (model_api.container_text.INPUT_REFUSED: keep the two equal).
INVALID_INPUT = "invalid input: "


class InvalidInput(ValueError):
    def __init__(self, message: str):
        super().__init__(INVALID_INPUT + message)


def model_fn(model_dir, context=None):
    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # torch_dtype, not dtype: the container pins transformers 4.51, which does not know the newer name.
    # Safetensors only (pickle .bin weights run code when loaded) unless the deployer allowed them.
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, torch_dtype=torch.float16 if cuda else torch.float32,
        use_safetensors=os.environ.get("ALLOW_PICKLE_WEIGHTS", "").lower() != "true")
    model = model.to("cuda" if cuda else "cpu").eval()
    return {"model": model, "tokenizer": tokenizer}


def input_fn(input_data, content_type, context=None):
    if content_type != "application/json":
        raise InvalidInput(f"content type {content_type!r} is not supported; send application/json")
    if isinstance(input_data, (bytes, bytearray)):
        input_data = input_data.decode("utf-8")
    try:
        request = json.loads(input_data)
    except ValueError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidInput("body must be a JSON object")
    task = request.get("task", "chat")
    if task == "embeddings":
        inputs = request.get("inputs")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_BATCH or \
                not all(isinstance(t, str) and t for t in inputs):
            raise InvalidInput(f"inputs must be a non-empty string or a list of 1 to {MAX_BATCH} of them")
        return {"task": "embeddings", "inputs": inputs}
    if task != "chat":
        raise InvalidInput("task must be 'chat' or 'embeddings'")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and m["role"] in ROLES
            and isinstance(m.get("content"), str) for m in messages):  # a list or object as role: not hashable
        raise InvalidInput("messages must be a non-empty list of {role: system|user|assistant, content: string}")
    return {"task": "chat", "messages": messages, "parameters": generation_parameters(request.get("parameters"))}


def generation_parameters(parameters) -> dict:
    """The parameters, checked, each number in its type (a temperature of 2 is 2.0: transformers refuses an int
    temperature; a max_new_tokens of 8.0 is 8), or InvalidInput: any caller of the endpoint gets a 400."""
    parameters = parameters or {}
    if not isinstance(parameters, dict) or set(parameters) - GENERATION:
        raise InvalidInput(f"parameters must be an object with keys from {sorted(GENERATION)}")
    out = {}
    for name, value in parameters.items():
        if name == "do_sample":
            if not isinstance(value, bool):
                raise InvalidInput("do_sample must be true or false")
        elif name == "stop":
            if not isinstance(value, list) or len(value) > MAX_STOPS or not all(isinstance(s, str) and s
                                                                                  for s in value):
                raise InvalidInput(f"stop must be a list of at most {MAX_STOPS} non-empty strings")
        elif name in INTEGERS:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            low, high = INTEGERS[name] or (1, MAX_NEW_TOKENS)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(f"{name} must be an integer from {low} to {high}")
        elif name == "top_p":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise InvalidInput("top_p must be a number greater than 0 and less than 1")
            value = float(value)
        else:
            low, high = NUMBERS[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not low <= value <= high:
                raise InvalidInput(f"{name} must be a number from {low:g} to {high:g}")
            value = float(value)
        out[name] = value
    return out


def predict_fn(data, bundle, context=None):
    model, tokenizer = bundle["model"], bundle["tokenizer"]
    if data["task"] == "embeddings":
        return {"embeddings": embed(model, tokenizer, data["inputs"])}
    return {"reply": reply(model, tokenizer, data["messages"], data["parameters"])}


def positions(model) -> int:
    """Tokens the model can attend to at once (its position embeddings), capped by CHAT_MAX_INPUT_TOKENS."""
    config = model.config
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return min(MAX_INPUT_TOKENS, limit) if limit else MAX_INPUT_TOKENS


def embed(model, tokenizer, texts):
    # Longer texts are truncated to the positions the model has, as sentence-transformers does for embeddings.
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=positions(model), return_tensors="pt")
    encoded = encoded.to(model.device)
    with torch.inference_mode():
        hidden = model(**encoded, output_hidden_states=True).hidden_states[-1].float()
    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1).cpu().tolist()


def chat_prompt(tokenizer, messages) -> str:
    """The model's own chat template where it has one; a plain role-prefixed transcript otherwise."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def reply(model, tokenizer, messages, parameters) -> str:
    encoded = tokenizer(chat_prompt(tokenizer, messages), return_tensors="pt").to(model.device)
    options = {k: v for k, v in parameters.items() if k not in ("seed", "stop")}
    options.setdefault("max_new_tokens", min(DEFAULT_NEW_TOKENS, MAX_NEW_TOKENS))
    used, limit = encoded["input_ids"].shape[1], positions(model)
    if used + options["max_new_tokens"] > limit:
        # Cutting a conversation short would silently drop what the caller said last: refuse, as TGI does.
        raise InvalidInput(f"the conversation is {used} tokens and max_new_tokens {options['max_new_tokens']}: "
                           f"together over the {limit} the model takes; shorten the messages or lower "
                           "max_new_tokens")
    # Sampling parameters imply sampling; without them decoding is greedy (deterministic).
    options.setdefault("do_sample", any(k in options for k in ("temperature", "top_p", "top_k")))
    if "seed" in parameters:
        torch.manual_seed(parameters["seed"])
    if REQUEST_DEADLINE_SECONDS > 0:
        options["max_time"] = REQUEST_DEADLINE_SECONDS
    stops = parameters.get("stop") or []
    if stops:  # generation ends at a stop text (transformers' StopStringCriteria reads the tokenizer's pieces)
        options.update(stop_strings=stops, tokenizer=tokenizer)
    with torch.inference_mode():
        output = model.generate(**encoded, **options, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(output[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
    # The reply ends before the first stop text, as OpenAI's stop does.
    ends = [answer.index(stop) for stop in stops if stop in answer]
    return (answer[:min(ends)] if ends else answer).strip()


def output_fn(prediction, accept, context=None):
    if accept not in ("application/json", "*/*"):
        raise ValueError(f"accept type {accept!r} is not supported; use application/json")
    return json.dumps(prediction)
