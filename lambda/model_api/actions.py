"""What a model does for a caller (Action) and another API's shapes over it (Adapter): outside the kinds package,
so that the adapters (model_api.adapters) and the kinds that register them can import it in any order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Protocol

from model_api.requests import read_json_body

# (answer, fetch) -> "" when the smoke test's answer is right, else what is wrong; fetch(url) -> bytes.
SmokeCheck = Callable[[dict, Callable[[str], bytes]], str]


@dataclass(frozen=True)
class Adapter:
    """Another API's request and answer shapes over one of our actions (model_api.adapters: OpenAI, TEI): the
    request is translated to ours, runs our action's pipeline unchanged (same validation, same model call, same
    storage), and our result is translated back. Synchronous only: an async model does not serve adapted routes
    (the other API's clients expect the answer, not a job)."""

    base: str  # the action whose pipeline runs (an action of the same kind)
    # (their request JSON, the name of the model this route serves, config) -> (our request body, what reply
    # needs). Raises ApiError naming their fields.
    translate: Callable[[Any, Optional[str], Any], tuple[dict, dict]]
    reply: Callable[[dict, dict], Any]  # (our result, what translate kept) -> their answer's JSON body
    body_limit: Callable[[Any], int]  # config -> largest body worth parsing
    errors: str = "api"  # "openai": error bodies also carry OpenAI's type and param (model_api.errors)
    # (tokens of model_api.streaming, what translate kept, request id) -> the events of a streamed answer in the
    # other API's shape. translate keeps "stream": true when the request asks to stream. None: never streams.
    stream_reply: Optional[Callable] = None


class Context(Protocol):
    """What an action's own hooks (Action.run, finish_job, job_body) get from the function that runs them
    (model_api.app.ModelApp): its kind's config, its endpoint, and its image store (which raises a deployment error
    in a function that has none)."""

    config: Any
    endpoint: Any

    @property
    def image_store(self) -> Any: ...


@dataclass(frozen=True)
class Action:
    """One thing a model does for a caller: a POST (or also a GET) at /<name> and /models/<model>[/<name>]."""

    name: str
    example: str  # a request body that works: error hints, the stack's curl example, local mode's banner
    # (event, config) -> ModelCall: parse, validate and bound the request; the same call for a request and a job.
    prepare: Callable
    # (answer, meta, content_type) -> the result's body. None for an action that runs its own way (run, below).
    finish: Optional[Callable]
    smoke: dict  # what the smoke test sends: small and quick
    smoke_invalid: dict  # a body the API must refuse with 400
    check: SmokeCheck
    methods: tuple[str, ...] = ("POST",)
    # config -> the JSON schema (draft 4) of the request body, bounded by the deployment's limits: what prepare
    # validates against, and what the OpenAPI document shows (model_api.openapi). None: not documented.
    schema: Optional[Callable[[Any], dict]] = None
    # The JSON schema of a successful answer's body (documentation only).
    response: Optional[dict] = None
    adapter: Optional[Adapter] = None  # set: another API's shapes over the action adapter.base
    # Streaming (lambda/stream_handler.py, a model deployed with streaming=true): (ModelCall, config, endpoint) ->
    # the answer as model_api.streaming tokens and finish, for a call whose meta has "stream": true or that an
    # adapter streams; stream_reply: (tokens, meta, request id) -> the events of this action's own streamed answer.
    stream_source: Optional[Callable] = None
    stream_reply: Optional[Callable] = None
    stream_only: bool = False  # served by streaming models only (TGI's /generate_stream)
    # An action whose answer is more than one model call and a finish (images: stored and signed, or the image
    # itself when the request accepts it) runs itself: (event, Context, request_id, negotiate) -> the body (a dict,
    # or model_api.http.Binary); negotiate False: JSON whatever the request accepts (an adapter's reply needs it).
    run: Optional[Callable] = None
    # Its async jobs likewise: finish_job (record, answer, load_input, Context) -> the result kept with the job;
    # job_body (record, result, Context) -> a finished job's body. None: finish(answer, meta), and the result.
    finish_job: Optional[Callable] = None
    job_body: Optional[Callable] = None
    # An answer that comes whole after a long time (an image) streams progress when the request accepts
    # text/event-stream (a streaming model): (event, config) -> the estimated seconds, or None; it raises ApiError
    # to refuse the request before the answer begins.
    progress: Optional[Callable] = None

    @property
    def short_path(self) -> str:
        return f"/{self.name}"

    def schema_for(self, config: Any) -> dict:
        """The request body's JSON schema under a deployment's config (an action without one: any object)."""
        return self.schema(config) if self.schema is not None else {"type": "object"}


def adapt_event(adapter: Adapter, event: Mapping, config, model: Optional[str], example: str) -> tuple[dict, dict]:
    """(the proxy event with the body translated to ours, what the adapter's reply needs). model: the model the
    route serves, which the body must name where the other API names one (None: not checked)."""
    data = read_json_body(event, adapter.body_limit(config), example)
    ours, keep = adapter.translate(data, model, config)
    # Adapted routes are POST only: the translated body is all our action reads.
    return {**event, "httpMethod": "POST", "body": json.dumps(ours, separators=(",", ":")),
            "isBase64Encoded": False}, keep


def adapted_prepare(adapter: Adapter, base_prepare: Callable, example: str) -> Callable:
    """An adapted action's prepare: the model call its request makes (translated, then our action's prepare)."""
    return lambda event, config: base_prepare(adapt_event(adapter, event, config, None, example)[0], config)


def adapted_action(name: str, example: str, base: Action, adapter: Adapter, **fields) -> Action:
    """An action in another API's shape over `base`: its model call is base's (adapted_prepare); it finishes
    through the adapter's reply, never by a finish of its own."""
    return Action(name, example, adapted_prepare(adapter, base.prepare, example), None, adapter=adapter, **fields)
