"""Text Embeddings Inference's POST /embed shape: {"inputs": "text" | [...], "normalize", "truncate"} answered by a
bare list of vectors, one per input. It is what huggingface_hub's InferenceClient(model=<url>).feature_extraction
posts and reads, as /generate is TGI's shape for its text_generation.

Vectors are always unit length (normalize false is refused) and long inputs are always cut to the model's
positions (truncate is accepted either way): what our /embeddings does (model_api.kinds.embeddings).
"""

from __future__ import annotations

from model_api.actions import Action, Adapter, adapted_action
from model_api.requests import validated
from model_api.text import max_text_body_bytes


def embed_schema(base: Action, config) -> dict:
    return {"$schema": "http://json-schema.org/draft-04/schema#", "title": "EmbedRequest", "type": "object",
            "properties": {"inputs": base.schema(config)["properties"]["inputs"],
                           "normalize": {"type": "boolean", "enum": [True],
                                         "description": "vectors are always unit length"},
                           "truncate": {"type": "boolean",
                                        "description": "accepted; long inputs are always cut to the model's "
                                                       "positions"}},
            "required": ["inputs"], "additionalProperties": False}


def embed_action(base: Action) -> Action:
    def translate(data, model, config):
        validated(data, embed_schema(base, config))
        return {"inputs": data["inputs"]}, {}

    adapter = Adapter(base.name, translate, lambda result, keep: result["embeddings"],
                      lambda config: max_text_body_bytes(config.limits))
    example = '{"inputs": ["a cyborg tiger", "a robot cat"]}'
    return adapted_action(
        "embed", example, base, adapter,
        smoke={"inputs": ["a cyborg tiger", "a robot cat"]},
        smoke_invalid={"inputs": [], "normalize": False},
        check=lambda answer, fetch: base.check({"embeddings": answer}, fetch) if isinstance(answer, list) else
        "the answer is not a list of vectors",
        schema=lambda config: embed_schema(base, config),
        response={"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                  "description": "one unit vector per input, in order"},
    )
