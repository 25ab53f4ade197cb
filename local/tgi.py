"""A local stand-in for the Text Generation Inference (TGI) container's /invocations, over a transformers causal
LM: TGI needs a GPU and its own server, neither of which exists here. It keeps TGI's request and answer shapes and
its parameter rules (it refuses what TGI refuses, with TGI's 422 and its error body), its token budget included:
MAX_INPUT_TOKENS and MAX_TOTAL_TOKENS as the deployed container gets them, within the stand-in model's own window,
so the API's TGI path runs unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from local.toolkit import ModelError, ModelWorker

PARAMETERS = {"max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "do_sample", "seed", "stop",
              "return_full_text", "details", "typical_p", "truncate", "watermark", "decoder_input_details"}


# TGI's default generation length when a request names none (router/src/validation.rs DEFAULT_GENERATION_LENGTH).
DEFAULT_GENERATION_LENGTH = 1024


def validation_error(problem: str) -> "ModelError":
    """TGI's 422 for a request it refuses: its ErrorResponse body, {"error": "Input validation error: ...",
    "error_type": "validation"} (router/src/server.rs, validation.rs)."""
    return ModelError(422, json.dumps({"error": f"Input validation error: {problem}", "error_type": "validation"}))


class TgiModel:
    def __init__(self, model_dir: Path, max_input_tokens: int | None = None, max_total_tokens: int | None = None):
        """max_input_tokens, max_total_tokens: the container's MAX_INPUT_TOKENS and MAX_TOTAL_TOKENS (unset: TGI's
        defaults from the model, its positions and one less), never beyond the stand-in model's own positions."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        positions = self.model.config.max_position_embeddings
        self.max_total_tokens = min(max_total_tokens or positions, positions)
        self.max_input_tokens = min(max_input_tokens or self.max_total_tokens - 1, self.max_total_tokens - 1)
        self._worker = ModelWorker()  # one request at a time, on one thread (local.toolkit.ModelWorker)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        try:
            request = json.loads(body)
        except ValueError:
            raise ModelError(422, "Failed to deserialize the JSON body") from None
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), str):
            raise ModelError(422, "inputs must be a string")
        parameters = request.get("parameters") or {}
        problem = _check(parameters)
        if problem:
            raise validation_error(problem)
        self._check_budget(request["inputs"], parameters.get("max_new_tokens"))
        text = self._worker.run(self._generate, request["inputs"], parameters)
        return json.dumps([{"generated_text": text}]).encode(), "application/json"

    def _check_budget(self, prompt: str, max_new_tokens: int | None) -> None:
        """TGI's token budget, in its order and words (router/src/validation.rs validate_input): input tokens plus
        max_new_tokens within MAX_TOTAL_TOKENS, then the input within MAX_INPUT_TOKENS."""
        length = len(self.tokenizer(prompt)["input_ids"])
        new = max_new_tokens if max_new_tokens is not None else min(
            max(self.max_total_tokens - length, 0), DEFAULT_GENERATION_LENGTH)
        if length + new > self.max_total_tokens:
            raise validation_error(f"`inputs` tokens + `max_new_tokens` must be <= {self.max_total_tokens}. Given: "
                                   f"{length} `inputs` tokens and {new} `max_new_tokens`")
        if length > self.max_input_tokens:
            raise validation_error(f"`inputs` must have less than {self.max_input_tokens} tokens. Given: {length}")

    def _generate(self, prompt: str, parameters: dict) -> str:
        torch = self._torch
        options = {"max_new_tokens": parameters.get("max_new_tokens", 100)}
        sampling = parameters.get("do_sample", False) or any(
            k in parameters for k in ("temperature", "top_p", "top_k"))
        options["do_sample"] = bool(sampling)
        for name in ("temperature", "top_p", "top_k", "repetition_penalty"):
            if name in parameters:
                options[name] = parameters[name]
        if "seed" in parameters:
            torch.manual_seed(parameters["seed"])
        encoded = self.tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            output = self.model.generate(**encoded, **options, pad_token_id=self.tokenizer.eos_token_id)
        text = self.tokenizer.decode(output[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
        for stop in parameters.get("stop") or []:
            if stop in text:
                text = text[: text.index(stop) + len(stop)]
        return prompt + text if parameters.get("return_full_text") else text


def _check(parameters: dict) -> str | None:
    """TGI's validation rules (router/src/validation.rs)."""
    if not isinstance(parameters, dict):
        return "parameters must be an object"
    unknown = set(parameters) - PARAMETERS
    if unknown:
        return f"unknown parameters {sorted(unknown)}"
    checks = [
        ("temperature", lambda v: v > 0, "`temperature` must be strictly positive"),
        ("top_p", lambda v: 0 < v < 1, "`top_p` must be > 0.0 and < 1.0"),
        ("top_k", lambda v: v > 0, "`top_k` must be strictly positive"),
        ("repetition_penalty", lambda v: v > 0, "`repetition_penalty` must be strictly positive"),
        ("max_new_tokens", lambda v: v > 0, "`max_new_tokens` must be strictly positive"),
    ]
    for name, ok, message in checks:
        if name in parameters and not ok(parameters[name]):
            return message
    if len(parameters.get("stop") or []) > 4:
        return "`stop` supports up to 4 stop sequences"
    return None
