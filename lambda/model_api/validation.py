"""A small JSON-schema (draft 4) validator for the keywords our request schemas use.

The Lambda ships no dependencies (boto3 comes from the runtime), so this replaces the `jsonschema` package for the
subset we need. tests/lambda/test_validation.py checks it agrees with `jsonschema`'s Draft4Validator.
Unsupported keywords raise at once, so a schema can never be silently half-checked.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from model_api.schema import NOT_BLANK

SUPPORTED = {
    "$schema", "title", "description", "type", "properties", "required", "additionalProperties",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "multipleOf", "enum", "items", "minItems", "maxItems",
    "exclusiveMinimum", "exclusiveMaximum", "maxProperties",
}

_TYPE_NAMES = {
    "object": "an object", "array": "an array", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):  # bool is an int in Python, never a number in JSON
        return False
    if name == "integer":
        # A number without a fraction part, 512.0 included: JSON Schema says so from draft 6 on (2020-12, which the
        # OpenAPI 3.1 document uses), as pydantic-based servers read it; draft 4 alone said otherwise. normalized()
        # then hands the model 512.
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not (isinstance(value, float) and not math.isfinite(value))
    raise ValueError(f"unsupported type {name!r}")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(value: Any) -> str:
    """What a caller sent, in JSON's words and at most 40 characters: null, true, 512, "text", an object, an
    array. Never Python's (None, True, 'text'): the caller wrote JSON. Text that cannot be UTF-8 (an unpaired
    surrogate) is shown escaped, as JSON may write it."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, float) and not math.isfinite(value):
        return "a number JSON cannot hold"
    text = json.dumps(value, ensure_ascii=False)
    if not _is_unicode(text):
        text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_of(values: list) -> str:
    return " or ".join(shown(v) for v in values)


def validate(instance: Any, schema: dict, path: str = "") -> list[str]:
    """Every violation of `schema` by `instance`, as readable messages (empty when valid)."""
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise ValueError(f"schema uses unsupported keywords: {sorted(unknown)}")
    where = path or "body"
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(instance, k) for k in kinds):
            wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
            return [f"{where} must be {wanted} (got {shown(instance)})"]
    problems: list[str] = []
    if "enum" in schema and not any(_same(instance, v) for v in schema["enum"]):
        why = f"; {schema['description']}" if "description" in schema else ""
        problems.append(f"{where} must be {_one_of(schema['enum'])} (got {shown(instance)}{why})")
    if isinstance(instance, str):
        if not _is_unicode(instance):
            # JSON may escape half of a UTF-16 surrogate pair ("\ud800"); no tokenizer or encoder takes that.
            return [f"{where} is not valid text: it holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)"]
        if "minLength" in schema and len(instance) < schema["minLength"]:
            problems.append(
                f"{where} must not be empty" if schema["minLength"] == 1
                else f"{where} must be at least {schema['minLength']} characters long"
            )
        elif "maxLength" in schema and len(instance) > schema["maxLength"]:
            problems.append(f"{where} must be at most {schema['maxLength']} characters long (got {len(instance)})")
        elif "pattern" in schema and not re.search(schema["pattern"], instance):
            # A pattern is never shown (a regular expression is not the caller's language): blank text, or what the
            # schema's description says the value is.
            problems.append(
                f"{where} must not be blank" if schema["pattern"] == NOT_BLANK
                else f"{where} must be {schema.get('description', 'in the documented form')} (got {shown(instance)})"
            )
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema:
            if schema.get("exclusiveMinimum") and instance <= schema["minimum"]:
                problems.append(f"{where} must be greater than {schema['minimum']} (got {shown(instance)})")
            elif instance < schema["minimum"]:
                problems.append(f"{where} must be at least {schema['minimum']} (got {shown(instance)})")
        if "maximum" in schema:
            if schema.get("exclusiveMaximum") and instance >= schema["maximum"]:
                problems.append(f"{where} must be less than {schema['maximum']} (got {shown(instance)})")
            elif instance > schema["maximum"]:
                problems.append(f"{where} must be at most {schema['maximum']} (got {shown(instance)})")
        if "multipleOf" in schema and instance % schema["multipleOf"]:
            problems.append(f"{where} must be a multiple of {schema['multipleOf']} (got {shown(instance)})")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            problems.append(f"{where} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            problems.append(f"{where} must have at most {schema['maxItems']} items (got {len(instance)})")
        if "items" in schema:
            for i, item in enumerate(instance):
                problems += validate(item, schema["items"], f"{where}[{i}]")
    if isinstance(instance, dict):
        if "maxProperties" in schema and len(instance) > schema["maxProperties"]:
            why = f"; {schema['description']}" if "description" in schema else ""
            problems.append(f"{where} must be {{}} (got {len(instance)} fields{why})" if not schema["maxProperties"]
                            else f"{where} must have at most {schema['maxProperties']} fields (got {len(instance)})")
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                problems.append(f"{_join(path, name)} is required")
        if schema.get("additionalProperties", True) is False:
            extra = sorted(k for k in instance if k not in properties)
            if extra:
                allowed = ", ".join(sorted(properties))
                names = ", ".join(shown(k) for k in extra[:5]) + (", ..." if len(extra) > 5 else "")
                problems.append(f"unknown field{'s' if len(extra) > 1 else ''} {names} in {where} (allowed: {allowed})")
        for name, sub in properties.items():
            if name in instance:
                problems += validate(instance[name], sub, _join(path, name))
    return problems


def normalized(instance: Any, schema: dict) -> Any:
    """instance (valid against schema) with each number in the type its field names: an integral number where an
    integer is asked for becomes an int (354.0 -> 354), a whole number where a number is asked for a float
    (temperature 2 -> 2.0; transformers refuses an int temperature). What the model gets is then one type per
    field, whatever the client wrote."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if isinstance(instance, bool) or instance is None:
        return instance
    if isinstance(instance, float) and "integer" in kinds and instance.is_integer():
        return int(instance)
    if isinstance(instance, int) and "number" in kinds and "integer" not in kinds:
        return float(instance)
    if isinstance(instance, list) and "items" in schema:
        return [normalized(item, schema["items"]) for item in instance]
    if isinstance(instance, dict) and "properties" in schema:
        properties = schema["properties"]
        return {name: normalized(value, properties[name]) if name in properties else value
                for name, value in instance.items()}
    return instance


def _same(value: Any, allowed: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    return value == allowed and isinstance(value, bool) == isinstance(allowed, bool)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
