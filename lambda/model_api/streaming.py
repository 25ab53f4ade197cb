"""Streamed text answers: a model's answer as a sequence of tokens and one finish, and that sequence written as
server-sent events in the shape each client expects (TGI's own, OpenAI's completions and chat chunks).

Pure like every pipeline: the tokens come from an iterable of bytes (the endpoint's stream, model_api.aws) or from a
whole answer; nothing here reaches AWS.

Sources:
- tgi_tokens(): Text Generation Inference's stream (its router's StreamResponse events: `data:{"index", "token":
  {"id", "text", "logprob", "special"}, "generated_text", "details"}`, the last one carrying generated_text and,
  when asked with details, the finish reason; an error is `data:{"error", "error_type"}`). TGI streams through
  SageMaker's /invocations when the body has "stream": true (its sagemaker-entrypoint routes /invocations to
  the same handlers as /generate and /generate_stream).
- whole(): an answer that arrives at once (the HF inference toolkit cannot stream): one token, then the finish.

A stream that breaks raises ApiError; the caller (lambda/stream_handler.py) writes it as an `error` event, since the
status line has gone out by then.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Union

from model_api import sse
from model_api.container_text import container_summary
from model_api.errors import ApiError, error_body


@dataclass(frozen=True)
class Token:
    text: str
    id: int = 0
    logprob: Optional[float] = None
    special: bool = False


@dataclass(frozen=True)
class Finish:
    """The end of an answer: its whole text when the model says it, why it ended (OpenAI's words: stop, length) and
    how many tokens it made (None: not reported)."""

    text: Optional[str] = None
    reason: str = "stop"
    tokens: Optional[int] = None


Item = Union[Token, Finish]

# TGI's finish reasons (router FinishReason) in OpenAI's words.
FINISH_REASONS = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}
# TGI's error types (router ErrorResponse) and what the caller gets for each.
TGI_ERRORS = {
    "validation": (400, "model_rejected_input", "the model refused the input"),
    "overloaded": (503, "endpoint_unavailable", "the model is overloaded; retry later"),
    "generation": (502, "model_error", "the model failed while generating"),
    "incomplete_generation": (502, "model_error", "the model stopped before its answer was complete"),
}


def tgi_tokens(parts: Iterable[bytes]) -> Iterator[Item]:
    """The tokens and finish of a TGI stream whose bytes arrive in `parts` (cut anywhere)."""
    decoder = sse.Decoder()
    for part in parts:
        for _, data in decoder.feed(part):
            if data.strip() == "[DONE]":
                continue
            try:
                message = json.loads(data)
            except ValueError:
                raise ApiError(502, "bad_model_response", "the model's stream holds an event that is not JSON") \
                    from None
            if not isinstance(message, dict):
                raise ApiError(502, "bad_model_response", "the model's stream holds an event that is not an object")
            if message.get("error") is not None:
                status, code, words = TGI_ERRORS.get(str(message.get("error_type")), (502, "model_error",
                                                                                       "the model failed"))
                raise ApiError(status, code, f"{words}: {container_summary(str(message['error']), status < 500)}")
            token = message.get("token")
            if isinstance(token, dict) and isinstance(token.get("text"), str):
                yield Token(token["text"], int(token.get("id") or 0), token.get("logprob"), bool(token.get("special")))
            if isinstance(message.get("generated_text"), str):
                details = message.get("details") or {}
                yield Finish(message["generated_text"], FINISH_REASONS.get(str(details.get("finish_reason")), "stop"),
                             details.get("generated_tokens"))
                return
    raise ApiError(502, "model_connection_lost", "the model's stream ended before its last token")


def whole(text: str) -> Iterator[Item]:
    """An answer the container gave at once, as a stream: the whole text as one token, then the finish."""
    yield Token(text)
    yield Finish(text)


def within(items: Iterable[Item], seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[Item]:
    """items, ended with a 504 once `seconds` have passed (checked as each item arrives: a read that hangs is bounded
    by the endpoint client's read timeout)."""
    deadline = clock() + seconds
    for item in items:
        if clock() > deadline:
            raise ApiError(504, "stream_timeout", f"the answer took longer than this API streams ({seconds:g} s); "
                                                  "ask for fewer tokens")
        yield item


# --------------------------------------------------------------------------------------------------- formats


def tgi_events(items: Iterable[Item]) -> Iterator[bytes]:
    """TGI's own stream (what huggingface_hub's text_generation(stream=True) and TGI's client read): one event per
    token, the last token's carrying generated_text and details. A token is held back until the next item, so the
    finish can ride on the last one."""
    held: Optional[Token] = None
    index = 0
    for item in items:
        if isinstance(item, Token):
            if held is not None:
                index += 1
                yield sse.event(_tgi_token(index, held))
            held = item
        else:
            index += 1
            last = held or Token("")
            yield sse.event({**_tgi_token(index, last), "generated_text": item.text,
                             "details": {"finish_reason": _tgi_reason(item.reason), "generated_tokens":
                                         item.tokens if item.tokens is not None else index, "seed": None}})
            return


def _tgi_token(index: int, token: Token) -> dict:
    return {"index": index, "token": {"id": token.id, "text": token.text, "logprob": token.logprob or 0.0,
                                      "special": token.special},
            "generated_text": None, "details": None}


def _tgi_reason(reason: str) -> str:
    return "length" if reason == "length" else "eos_token"


def openai_completion_events(items: Iterable[Item], head: dict, prefix: str = "",
                             include_usage: bool = False) -> Iterator[bytes]:
    """OpenAI's completions stream: text_completion chunks (choices[0].text), the last with its finish_reason, then
    `data: [DONE]`. head: id, created, model. prefix: text sent first (the prompt, for echo)."""
    def chunk(text: str, reason: Optional[str]) -> bytes:
        return sse.event({**head, "object": "text_completion", "choices": [
            {"index": 0, "text": text, "finish_reason": reason, "logprobs": None}]})

    sent = prefix
    if prefix:
        yield chunk(prefix, None)
    for item in items:
        if isinstance(item, Token):
            if item.text and not item.special:
                sent += item.text
                yield chunk(item.text, None)
        else:
            rest = _rest(item, sent)
            if rest:
                yield chunk(rest, None)
            yield chunk("", item.reason)
            if include_usage:
                yield sse.event({**head, "object": "text_completion", "choices": [], "usage": _usage(item)})
            yield sse.DONE
            return


def openai_chat_events(items: Iterable[Item], head: dict, include_usage: bool = False) -> Iterator[bytes]:
    """OpenAI's chat stream: chat.completion.chunk objects, the first with the assistant role, then one per piece of
    content (choices[0].delta.content), the last with its finish_reason, then `data: [DONE]`."""
    def chunk(delta: dict, reason: Optional[str]) -> bytes:
        return sse.event({**head, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]})

    yield chunk({"role": "assistant", "content": ""}, None)
    sent = ""
    for item in items:
        if isinstance(item, Token):
            if item.text and not item.special:
                sent += item.text
                yield chunk({"content": item.text}, None)
        else:
            rest = _rest(item, sent)
            if rest:
                yield chunk({"content": rest}, None)
            yield chunk({}, item.reason)
            if include_usage:
                yield sse.event({**head, "object": "chat.completion.chunk", "choices": [], "usage": _usage(item)})
            yield sse.DONE
            return


def _rest(finish: Finish, sent: str) -> str:
    """What the whole answer has beyond the tokens' text: a last token that ended inside a UTF-8 character has no
    text of its own in TGI's stream (its decode_token waits for the rest), yet its generated_text has it. OpenAI's
    clients join the chunks, so the rest is sent before the finish."""
    whole = finish.text or ""
    return whole[len(sent):] if whole.startswith(sent) else ""


def _usage(finish: Finish) -> dict:
    """Token counts where the model reports them (TGI: generated tokens), 0 where it does not."""
    made = finish.tokens or 0
    return {"prompt_tokens": 0, "completion_tokens": made, "total_tokens": made}


def error_event(error: ApiError, style: str = "api") -> bytes:
    """An error after the answer began: an `error` event carrying the API's error body (OpenAI's SDK raises it as
    an APIError; huggingface_hub raises on an event with an "error" field)."""
    return sse.event(error_body(error.code, error.message, error.status, style), "error")
