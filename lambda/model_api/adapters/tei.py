"""Text Embeddings Inference's POST /embed shape: {"inputs": "text" | [...], "normalize", "truncate"} answered by a
bare list of vectors, one per input. It is what huggingface_hub's InferenceClient(model=<url>).feature_extraction
posts and reads, as /generate is TGI's shape for its text_generation.

Vectors are always unit length (normalize false is refused) and long inputs are always cut to the model's
positions (truncate is accepted either way): what our /embeddings does (model_api.kinds.embeddings).
"""

from __future__ import annotations

from functools import partial

from model_api.actions import Action, Adapter, adapted_action
from model_api.requests import validated
from model_api.text import body_limit


def embed_schema(base: Action, config) -> dict:
    return {"$schema": "http://json-schema.org/draft-04/schema#", "title": "EmbedRequest", "type": "object",
            "properties": {"inputs": base.schema_for(config)["properties"]["inputs"],
                           "normalize": {"type": "boolean", "enum": [True],
                                         "description": "vectors are always unit length"},
                           "truncate": {"type": "boolean",
                                        "description": "accepted; long inputs are always cut to the model's "
                                                       "positions"}},
            "required": ["inputs"], "additionalProperties": False}


def embed_translate(base: Action, data, model, config) -> tuple[dict, dict]:
    validated(data, embed_schema(base, config))
    return {"inputs": data["inputs"]}, {}


def embed_reply(result: dict, keep: dict) -> list:
    return result["embeddings"]


def embed_check(base: Action, answer, fetch) -> str:
    if not isinstance(answer, list):
        return "the answer is not a list of vectors"
    return base.check({"embeddings": answer}, fetch)


EMBED_RESPONSE = {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                  "description": "one unit vector per input, in order"}


def embed_action(base: Action) -> Action:
    adapter = Adapter(base.name, partial(embed_translate, base), embed_reply, body_limit)
    return adapted_action(
        "embed", '{"inputs": ["a cyborg tiger", "a robot cat"]}', base, adapter,
        smoke={"inputs": ["a cyborg tiger", "a robot cat"]},
        smoke_invalid={"inputs": [], "normalize": False},
        check=partial(embed_check, base), schema=partial(embed_schema, base), response=EMBED_RESPONSE)
