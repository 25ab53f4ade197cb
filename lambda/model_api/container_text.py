"""What a model container said when it failed, as the API's caller may read it (model_api.aws for InvokeEndpoint's
ModelError, model_api.streaming for TGI's error events): the caller gets a short, safe summary, the function's log
the whole text. Pure: no AWS here."""

from __future__ import annotations

import json
import re

# How our inference code marks a refused input (models/*/code/inference.py INVALID_INPUT): the HF inference toolkit
# answers 400 for every exception, CUDA faults included, so a bare 400 from it says nothing about who is at fault.
INPUT_REFUSED = "invalid input: "

# What some containers say, and what it means for the caller: torch's embedding lookup past the model's positions (the
# inference toolkit's text-generation pipeline answers it as a 400 when a prompt and max_new_tokens outgrow GPT-2's
# 1024 positions; tried on the toolkit with a small GPT-2 in local mode: tests/local/test_local_text_models.py).
KNOWN_CONTAINER_MESSAGES = {
    "index out of range in self": "the prompt and the tokens to generate are longer than the model's context window "
                                  "(the positions it can attend to): shorten the prompt or ask for fewer new tokens",
    "out of memory": "out of accelerator memory: ask for less at once (fewer or smaller images, fewer "
                     "tokens), or retry",
}
# What a container's text may hold that its caller should never read: a Python traceback or source path, CUDA and
# torch internals (devices, allocator figures), filesystem paths, addresses.
CONTAINER_INTERNALS = re.compile(r"Traceback|File \"|\.py\b|\bline \d+|CUDA|cuDNN|NCCL|\btorch\.|"
                                 r"0x[0-9a-fA-F]{6,}|(?:^|[\s'\"(])/(?:opt|usr|tmp|home|var|root)/", re.IGNORECASE)
SUMMARY_CHARS = 200


def container_words(text: str) -> str:
    """A container's error in its own words: TGI answers {"error": "...", "error_type": "validation"} (its
    router's ErrorResponse), the toolkit plain text."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        text = data["error"]
    return text


def container_summary(text: str, refused: bool) -> str:
    """What the caller reads of a container's error: a message the API knows, explained; an input refusal's first
    line in the container's words (our inference code's, TGI's validation) unless it shows internals; else only
    where to look. Never more than SUMMARY_CHARS of the container's text."""
    words = container_words(text)
    known = next((meaning for said, meaning in KNOWN_CONTAINER_MESSAGES.items() if said in words.lower()), None)
    if known is not None:
        return known
    first = (words.strip().splitlines() or [""])[0].strip()
    if refused and first and not CONTAINER_INTERNALS.search(first):
        return first[:SUMMARY_CHARS]
    return "an error inside the model container (details in the function's log, under this request's id)"
