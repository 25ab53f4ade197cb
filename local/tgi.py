"""A local stand-in for the Text Generation Inference (TGI) container's /invocations, over a transformers causal
LM: TGI needs a GPU and its own server, neither of which exists here. It keeps TGI's request and answer shapes and
its parameter rules (it refuses what TGI refuses, with TGI's 422 and its error body), its token budget included:
MAX_INPUT_TOKENS and MAX_TOTAL_TOKENS as the deployed container gets them, within the stand-in model's own window,
so the API's TGI path runs unchanged."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Iterator

from local.toolkit import ModelError, ModelWorker

PARAMETERS = {"max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "do_sample", "seed", "stop",
              "return_full_text", "details", "typical_p", "truncate", "watermark", "decoder_input_details"}


# TGI's default generation length when a request names none (router/src/validation.rs DEFAULT_GENERATION_LENGTH),
# for its budget check; the stand-in itself makes at most this many (the API always names max_new_tokens).
DEFAULT_GENERATION_LENGTH = 1024
STAND_IN_NEW_TOKENS = 100


def validation_error(problem: str) -> "ModelError":
    """TGI's 422 for a request it refuses: its ErrorResponse body, {"error": "Input validation error: ...",
    "error_type": "validation"} (router/src/server.rs, validation.rs)."""
    return ModelError(422, json.dumps({"error": f"Input validation error: {problem}", "error_type": "validation"}))


class TgiModel:
    def __init__(self, model_dir: Path, max_input_tokens: int | None = None, max_total_tokens: int | None = None,
                 deadline_seconds: float | None = None):
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
        # One request at a time, on one thread (local.toolkit.ModelWorker); a generation stops at the deadline
        # (transformers' max_time), so a caller that gave up does not hold the worker.
        self._worker = ModelWorker(deadline_seconds)
        self.deadline_seconds = deadline_seconds
        self.tokens_made = 0  # tokens the last streamed generation made
        self.last_details: dict = {}

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        request = self._request(body)
        parameters = request.get("parameters") or {}
        text = self._worker.run(self._generate, request["inputs"], parameters)
        # With details, TGI adds how the answer ended (its Details: finish_reason, generated_tokens, seed, ...).
        answer = {"generated_text": text, **({"details": self.last_details} if parameters.get("details") else {})}
        return json.dumps([answer]).encode(), "application/json"

    def _request(self, body: bytes) -> dict:
        """The request, checked as TGI checks it before generating (its 422s)."""
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
        request["parameters"] = parameters = _typed(parameters)
        self._check_budget(request["inputs"], parameters.get("max_new_tokens"))
        return request

    def invoke_stream(self, body: bytes, content_type: str, accept: str) -> Iterator[bytes]:
        """/invocations with "stream": true, as TGI answers it: its StreamResponse events (text/event-stream), one
        per token as it is made, the last carrying generated_text and (with details) the finish reason and token
        count; refused requests raise before the first byte, as TGI answers them 422. Without "stream", the whole
        answer. Closing the stream (a caller gone) stops the generation, as TGI drops a request whose client left."""
        request = self._request(body)
        if not request.get("stream"):
            return iter([self.invoke(body, content_type, accept)[0]])
        return self._stream(request["inputs"], request.get("parameters") or {})

    def _stream(self, prompt: str, parameters: dict) -> Iterator[bytes]:
        # A token waits for its reader (a queue of one): generation keeps pace with the caller, so a caller that
        # goes away stops it within a token.
        tokens: queue.Queue = queue.Queue(maxsize=1)
        cancel = threading.Event()
        self._worker.submit(self._generate_into, prompt, parameters, tokens, cancel)
        limit = parameters.get("max_new_tokens", STAND_IN_NEW_TOKENS)
        eos = self.tokenizer.eos_token_id
        ids: list[int] = []
        sent = ""
        try:
            while True:
                item = tokens.get()
                if item is None:
                    return
                if isinstance(item, BaseException):  # TGI's error event for a generation that failed
                    yield _event({"error": f"Request failed during generation: {item}", "error_type": "generation"})
                    return
                ids.append(item)
                special = item == eos
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                # A token may hold part of a UTF-8 character: its text waits until the character is whole (TGI's
                # decode_token does the same).
                piece = "" if text.endswith("\ufffd") else text[len(sent):]
                sent = sent if text.endswith("\ufffd") else text
                stop = next((s for s in parameters.get("stop") or [] if s in sent), None)
                reason = "eos_token" if special else "stop_sequence" if stop else "length" if len(ids) >= limit \
                    else None
                event = {"index": len(ids), "token": {"id": item, "text": self.tokenizer.decode([item]) if special
                                                      else piece, "logprob": 0.0, "special": special},
                         "generated_text": None, "details": None}
                if reason is not None:  # generated_text is the whole decode, a cut character's tail included
                    generated = text[: text.index(stop) + len(stop)] if stop else text
                    event["generated_text"] = prompt + generated if parameters.get("return_full_text") else generated
                    if parameters.get("details"):
                        event["details"] = {"finish_reason": reason, "generated_tokens": len(ids),
                                            "seed": parameters.get("seed")}
                    yield _event(event)
                    return
                yield _event(event)
        finally:
            cancel.set()  # a caller gone, or the answer complete: the model stops at its next token

    def _generate_into(self, prompt: str, parameters: dict, tokens: queue.Queue, cancel: threading.Event) -> None:
        """Generate on the model's thread, each new token id into `tokens`, then None; stops when `cancel` is set."""
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        torch, model = self._torch, self
        self.tokens_made = 0  # of this generation (the tests read it)

        def say(item) -> None:  # to a reader that may be gone: give up once cancelled
            while not cancel.is_set():
                try:
                    tokens.put(item, timeout=0.05)
                    return
                except queue.Full:
                    continue

        class Into(BaseStreamer):
            prompt_seen = False

            def put(self, value):
                if not self.prompt_seen:  # generate() puts the prompt first
                    self.prompt_seen = True
                    return
                for token in value.reshape(-1).tolist():
                    model.tokens_made += 1
                    say(token)

            def end(self):
                pass

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        try:
            self._generate(prompt, parameters, streamer=Into(), stopping_criteria=StoppingCriteriaList([Cancelled()]))
        except Exception as error:
            say(error)
        finally:
            say(None)

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

    def _generate(self, prompt: str, parameters: dict, **stream) -> str:
        torch = self._torch
        options = {"max_new_tokens": parameters.get("max_new_tokens", STAND_IN_NEW_TOKENS), **stream}
        if self.deadline_seconds:
            options["max_time"] = self.deadline_seconds
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
        new = output[0, encoded["input_ids"].shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        reason = "eos_token" if len(new) and int(new[-1]) == self.tokenizer.eos_token_id else "length"
        for stop in parameters.get("stop") or []:
            if stop in text:
                text, reason = text[: text.index(stop) + len(stop)], "stop_sequence"
        self.last_details = {"finish_reason": reason, "generated_tokens": int(len(new)),
                             "seed": parameters.get("seed"), "prefill": [], "tokens": []}
        return prompt + text if parameters.get("return_full_text") else text


def shown_type(value) -> str:
    return f"boolean `{str(value).lower()}`" if isinstance(value, bool) else f"floating point `{value}`"


def _event(data: dict) -> bytes:
    """One server-sent event as TGI writes it (axum's Sse: `data:` then the JSON, a blank line)."""
    return b"data:" + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


# TGI's GenerateParameters (router/src/lib.rs): these are f32, which serde reads from any JSON number (2 is 2.0);
# the integer ones (max_new_tokens u32, top_k i32, seed u64) it refuses as floats (_check).
FLOAT_PARAMETERS = ("temperature", "top_p", "repetition_penalty", "typical_p")
INTEGER_PARAMETERS = ("max_new_tokens", "top_k", "seed")


def _typed(parameters: dict) -> dict:
    """The parameters as TGI holds them: its f32 fields floats."""
    return {name: float(value) if name in FLOAT_PARAMETERS and isinstance(value, int) and not isinstance(value, bool)
            else value for name, value in parameters.items()}


def _check(parameters: dict) -> str | None:
    """TGI's validation rules (router/src/validation.rs)."""
    if not isinstance(parameters, dict):
        return "parameters must be an object"
    unknown = set(parameters) - PARAMETERS
    if unknown:
        return f"unknown parameters {sorted(unknown)}"
    for name in INTEGER_PARAMETERS:  # serde's words for a float where an integer goes
        value = parameters.get(name)
        if isinstance(value, float) or isinstance(value, bool):
            return f"invalid type: {shown_type(value)}, expected an integer for `{name}`"
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
