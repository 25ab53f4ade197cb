"""A model kind that is not in the product: text classification, written the way a new kind is added (one module
that defines KIND). Tests register it in model_api.kinds.KINDS and check that nothing else needed an edit."""

from __future__ import annotations

from model_api import text
from model_api.errors import ApiError
from model_api.kinds.base import Action, Kind
from model_api.schema import NOT_BLANK

EXAMPLE = '{"inputs": "I love this"}'
SCHEMA = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
          "properties": {"inputs": {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": NOT_BLANK}},
          "required": ["inputs"], "additionalProperties": False}


def prepare(event, config):
    return text.json_call({"inputs": text.read_request(event, config, SCHEMA, EXAMPLE)["inputs"]})


def finish(body, meta, content_type=""):
    answer = text.answer_json(body, content_type)
    if not isinstance(answer, list) or not all(isinstance(a, dict) and "label" in a for a in answer):
        raise ApiError(502, "bad_model_response", "the model's answer has no labels")
    return {"labels": [{"label": a["label"], "score": a.get("score")} for a in answer]}


CLASSIFY = Action("classify", EXAMPLE, prepare, finish, smoke={"inputs": "fine"}, smoke_invalid={"inputs": ""},
                  check=lambda answer, fetch: "" if answer.get("labels") else "no labels")
KIND = Kind("text-classification", (CLASSIFY,), protocols=("pipeline",), default_protocol=lambda model: "pipeline",
            target_invocations=120.0, target_backlog=50.0)
