"""What each inference module's input_fn and output_fn make of a grid of requests, against the reviewed table
tests/models/snapshots/inference.json.

The other model tests run the code on tiny models and check the rules with message fragments; this table pins the
rest with no model loaded: each request field and each parameter of a full request (Stable Diffusion; chat and
embeddings) removed and set to awkward values and numbers on both sides of every bound, the content types, bodies
that are not JSON objects, and output_fn for each Accept type. Each row is the parsed request or the exception with
its whole message (a refused input starts with "invalid input: ", which the API turns into its own 400). After an
intended change, `make snapshots` rewrites the table and `git diff` is the review.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TABLE = Path(__file__).parent / "snapshots" / "inference.json"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"  # make snapshots

AWKWARD = [None, "", " ", "x", True, [], {}, ["x"], -1, 0, 1, 0.5, "8"]
NUMBERS = [7, 8, 9, 49.5, 50, 50.5, 51, 63, 64, 65, 149, 150, 151, 1023, 1024, 1025, 2**32 - 1, 2**32]
SD_REQUEST = {"inputs": "a cyborg tiger", "parameters": {
    "width": 512, "height": 512, "num_inference_steps": 30, "guidance_scale": 7.5, "num_images_per_prompt": 1,
    "seed": 3, "negative_prompt": "blurry"}}
CHAT_REQUEST = {"task": "chat", "messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Hi"}],
                "parameters": {"max_new_tokens": 8, "temperature": 0.5, "top_p": 0.9, "top_k": 5,
                               "repetition_penalty": 1.1, "do_sample": True, "seed": 3}}
EMBEDDINGS_REQUEST = {"task": "embeddings", "inputs": ["a cyborg tiger", "a robot cat"]}


def _variants(request: dict) -> list[tuple[str, object]]:
    out = [("as is", request)]
    for key, value in request.items():
        out.append((f"without {key}", {k: v for k, v in request.items() if k != key}))
        out += [(f"{key}={v!r}", {**request, key: v}) for v in AWKWARD]
        if isinstance(value, dict):
            for inner in value:
                out.append((f"{key} without {inner}", {**request, key: {k: v for k, v in value.items() if k != inner}}))
                out += [(f"{key}.{inner}={v!r}", {**request, key: {**value, inner: v}}) for v in AWKWARD + NUMBERS]
            out.append((f"{key}.unknown=1", {**request, key: {**value, "unknown": 1}}))
        if isinstance(value, list):
            out += [(f"{key} x{n}", {**request, key: value[:1] * n}) for n in (31, 32, 33)]
            if isinstance(value[0], dict):
                for inner in value[0]:
                    out += [(f"{key}[0].{inner}={v!r}", {**request, key: [{**value[0], inner: v}, *value[1:]]})
                            for v in [*AWKWARD, "robot", "assistant"]]
    out.append(("unknown field", {**request, "unknown": 1}))
    return out


BODIES = [("not JSON", "{inputs"), ("a list", "[]"), ("a string", '"x"'), ("empty", ""), ("null", "null")]
CONTENT_TYPES = ["text/plain", "application/json; charset=utf-8", "application/x-www-form-urlencoded"]


def outcome(call) -> object:
    try:
        return {"ok": call()}
    except Exception as exc:  # the row names what was raised
        return {"error": f"{type(exc).__name__}: {exc}"}


def input_rows(module, name: str, request: dict) -> list[list]:
    rows = [[name, case, outcome(lambda b=body: module.input_fn(json.dumps(b), "application/json"))]
            for case, body in _variants(request)]
    rows += [[name, case, outcome(lambda b=body: module.input_fn(b, "application/json"))] for case, body in BODIES]
    rows += [[name, f"content type {t}", outcome(lambda t=t: module.input_fn(json.dumps(request), t))]
             for t in CONTENT_TYPES]
    rows.append([name, "bytes", outcome(lambda: module.input_fn(json.dumps(request).encode(), "application/json"))])
    return rows


def _image(shade: int):
    from PIL import Image

    return Image.new("RGB", (8, 8), (shade, 0, 0))


def output_rows(sd, chat) -> list[list]:
    def shown(data):
        return {"bytes": len(data), "pngs": data.count(b"\x89PNG")} if isinstance(data, bytes) else json.loads(data)

    rows = []
    for count in (1, 2):
        prediction = {"images": [_image(10 * i) for i in range(count)], "prompt": "p"}
        for accept in ("image/png", "application/x-png-sequence", "application/json", "image/jpeg", "*/*"):
            rows.append(["sd output", f"{count} images as {accept}",
                         outcome(lambda a=accept, p=prediction: shown(sd.output_fn(p, a)))])
    for accept in ("application/json", "*/*", "text/plain", "image/png"):
        rows.append(["chat output", accept, outcome(lambda a=accept: json.loads(chat.output_fn({"reply": "x"}, a)))])
    return rows


def table(sd, chat) -> list[list]:
    return [*input_rows(sd, "sd input", SD_REQUEST), *input_rows(chat, "chat input", CHAT_REQUEST),
            *input_rows(chat, "embeddings input", EMBEDDINGS_REQUEST), *output_rows(sd, chat)]


def test_each_request_is_parsed_or_refused_as_the_reviewed_table_says(sd_inference, chat_inference):
    rows = json.loads(json.dumps(table(sd_inference, chat_inference), ensure_ascii=False))
    if UPDATE:
        TABLE.parent.mkdir(exist_ok=True)
        TABLE.write_text("[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n")
    expected = {(row[0], row[1]): row[2] for row in json.loads(TABLE.read_text())}
    changed = [f"{where} [{case}]\n  table: {json.dumps(expected.get((where, case)))[:400]}\n  now:   "
               f"{json.dumps(result)[:400]}" for where, case, result in rows if expected.get((where, case)) != result]
    assert len(rows) == len(expected) and not changed, (
        f"{len(changed)} of {len(rows)} rows differ from the reviewed table (intended? `make snapshots`, then review "
        "git diff):\n" + "\n".join(changed[:30]))


def test_the_table_has_each_outcome_for_each_module():
    rows = json.loads(TABLE.read_text())
    for where in ("sd input", "chat input", "embeddings input", "sd output", "chat output"):
        outcomes = {next(iter(result)) for w, _, result in rows if w == where}
        assert outcomes == {"ok", "error"}, where
    refused = [result["error"] for w, _, result in rows if w.endswith("input") and "error" in result]
    # every refused request is the caller's mistake, said as such (model_api.container_text.INPUT_REFUSED)
    assert all(message.startswith("InvalidInput: invalid input: ") for message in refused), refused[:3]
