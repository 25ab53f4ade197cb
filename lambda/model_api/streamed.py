"""A streaming model's answers (lambda/stream_handler.py hands Lambda ModelApp.stream, which runs answer()): the
same routes and pipelines as the buffered answer (model_api.app), answered as a stream, which API Gateway passes on
as it comes (the integration's responseTransferMode STREAM; stacks/rest_api.py). lambda/stream_runtime.py writes
what it yields to Lambda's Runtime API in streaming mode.

answer() yields API Gateway's streamed proxy answer: a head (status and headers, model_api.sse.prelude), then the
body's bytes. Which requests stream:
- text: "stream": true on /generate, /v1/completions and /v1/chat/completions, and every POST /generate_stream:
  server-sent events in TGI's or OpenAI's shape, a token at a time from TGI, in one piece from a container that
  cannot stream (model_api.streaming);
- images, with Accept: text/event-stream: `progress` events while the model works (elapsed and estimated
  seconds), then one `result` event with the JSON answer (an action with a progress hook);
- everything else: the buffered answer (ModelApp.handle), whole, after the head. The request-time bound is this
  function's (stream_timeout_seconds), not API Gateway's 29 s.

Errors before the first event are answered as the buffered API answers them (status and JSON error body); after
it, the status line has gone out: the error is an `error` event in the API's error shape, and the stream ends.
Each request writes one log line when its answer is complete (first_token_ms: until the first event).
"""


from __future__ import annotations

import json
import logging
import threading
import time
from itertools import chain
from typing import Callable, Iterable, Iterator

from model_api import cors, sse, streaming
from model_api.actions import adapt_event
from model_api.app import key_of, request_id_of
from model_api.calls import Abandoned, abandon_with
from model_api.errors import ApiError, internal_error
from model_api.http import error_response, json_response

log = logging.getLogger("model_api")
PROGRESS_SECONDS = 1.0  # between progress events of an image stream (also keeps idle proxies from closing it)


def answer(app, event: dict, context) -> Iterator[bytes]:
    """The streamed answer of one request to `app` (a model_api.app.ModelApp)."""
    started = time.monotonic()
    request_id = request_id_of(context)
    try:
        stream = _stream(app, event, request_id, started)
    except ApiError as error:  # refused before anything was sent: the buffered answer's status and body
        return _refused(app, event, request_id, started, error)
    except Exception:  # a bug, not a user error: as lambda/handler.py answers one
        log.exception("unhandled error in request %s", request_id)
        return _refused(app, event, request_id, started, internal_error())
    if stream is None:
        return _buffered(app, app.handle(event, context), event)
    return stream


def _refused(app, event: dict, request_id: str, started: float, error: ApiError) -> Iterator[bytes]:
    record = app.new_record(event, request_id)
    record["error_code"] = error.code
    if error.__cause__ is not None:
        record["cause"] = type(error.__cause__).__name__
    app.write_record(record, error.status, started)
    return _buffered(app, error_response(error, request_id, _style(app, event)), event)


def _style(app, event: dict) -> str:
    return app.error_style(app.routes.get(key_of(event)))


def _buffered(app, response: dict, event: dict) -> Iterator[bytes]:
    """A proxy response (lambda/handler.py's) as a streamed answer: its head, then its whole body."""
    headers = dict(response.get("headers") or {})
    if "Access-Control-Allow-Origin" not in headers:
        headers.update(cors.response_headers(app.cors_origins, cors.request_origin(event.get("headers"))))
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):  # a streamed answer is raw bytes: no binary media types involved
        import base64
        data = base64.b64decode(body)
    else:
        data = body.encode("utf-8")
    yield sse.prelude(response["statusCode"], headers)
    if data:
        yield data


def _stream(app, event: dict, request_id: str, started: float):
    """The streamed answer of a request that streams, or None for one that does not. Raises ApiError for a request
    refused before its answer begins."""
    if app.is_async:
        return None
    key = key_of(event)
    name = app.routes.get(key)
    action = app.kind_actions.get(name) if name is not None else None
    if action is None:
        return None
    if action.adapter is not None:
        if action.adapter.stream_reply is None:
            return None
        ours, keep = adapt_event(action.adapter, event, app.config, app.model.name, action.example)
        if not keep.get("stream"):
            return None
        base = app.kind.action(action.adapter.base)
        call = base.prepare(ours, app.config)
        items = base.stream_source(call, app.config, app.endpoint)
        return _events(app, event, request_id, started, items,
                       lambda tokens: action.adapter.stream_reply(tokens, keep, request_id), action.adapter.errors)
    if action.progress is not None:  # a long whole answer (images): progress events, then the result
        if not _wants_events(event):
            return None
        estimate = action.progress(event, app.config)  # refuses the request now, before the answer begins
        return _progress(app, event, request_id, started, estimate, action)
    if action.stream_source is None:
        return None
    call = action.prepare(event, app.config)
    if not call.meta.get("stream"):
        return None
    items = action.stream_source(call, app.config, app.endpoint)
    return _events(app, event, request_id, started, items,
                   lambda tokens: action.stream_reply(tokens, call.meta, request_id), "api")


def _wants_events(event: dict) -> bool:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    accepted = [part.split(";")[0].strip().lower() for part in headers.get("accept", "").split(",")]
    return sse.CONTENT_TYPE in accepted


def _head(app, event: dict, request_id: str) -> bytes:
    headers = {**sse.STREAM_HEADERS, "X-Request-Id": request_id,
               **cors.response_headers(app.cors_origins, cors.request_origin(event.get("headers")))}
    return sse.prelude(200, headers)


def _events(app, event: dict, request_id: str, started: float, items: Iterable, reply: Callable, style: str):
    """A token stream's answer. Its first item is awaited here, so an error the model raises at once (a refused
    input, an endpoint not in service) is still answered with its own status."""
    record = app.new_record(event, request_id)
    record["streamed"] = True
    tokens = iter(items)
    try:
        first = next(tokens)
    except StopIteration:
        first = None
    except ApiError as error:
        _close(tokens)
        return _refused(app, event, request_id, started, error)
    record["first_token_ms"] = round((time.monotonic() - started) * 1000, 1)
    # The deadline counts from the request's start: what is left of the stream's time.
    remaining = max(app.stream_seconds - (time.monotonic() - started) - 1, 1)
    source = streaming.within(chain([] if first is None else [first], tokens), remaining)
    return _written(app, event, request_id, started, record, reply(source), tokens, style)


def _written(app, event, request_id, started, record, body: Iterable[bytes], tokens, style) -> Iterator[bytes]:
    count = 0
    try:
        yield _head(app, event, request_id)
        try:
            for chunk in body:
                count += 1
                yield chunk
        except ApiError as error:
            record["stream_error"] = error.code
            if error.__cause__ is not None:
                record["cause"] = type(error.__cause__).__name__
            yield streaming.error_event(error, style)
        except Exception as error:  # a bug, or a failure nothing named: the client is told only that it broke
            log.exception("unhandled error in request %s after its answer began", request_id)
            record["stream_error"], record["cause"] = "internal_error", type(error).__name__
            yield streaming.error_event(internal_error(), style)
    finally:  # also when the reader stops early (GeneratorExit): the model's stream is closed
        _close(tokens)
        record["events"] = count
        app.endpoint.take_latency_ms()  # until the answer began: TimeToFirstToken says it, not ModelLatency
        app.write_record(record, 200, started)


def _close(items) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()


def _progress(app, event: dict, request_id: str, started: float, estimate, action) -> Iterator[bytes]:
    """A request for a long whole answer (an image) with Accept: text/event-stream: the buffered pipeline runs on a
    thread; meanwhile a `progress` event each PROGRESS_SECONDS, then `result` (the JSON answer) or `error`."""
    record = app.new_record(event, request_id)
    record["streamed"] = True
    outcome: dict = {}
    done, gone = threading.Event(), threading.Event()

    def work():
        abandon_with(gone)
        try:
            outcome["body"] = app.action(event, request_id)
            outcome["model_ms"] = app.endpoint.take_latency_ms()  # measured on this thread
        except Abandoned:  # nothing to answer: the reader is gone (the request's line says so)
            pass
        except ApiError as error:
            outcome["error"] = error
        except Exception as error:  # a bug: logged with its traceback, the caller told nothing internal
            log.exception("unhandled error in request %s", request_id)
            outcome["error"] = internal_error()
            outcome["bug"] = error
        finally:
            done.set()

    threading.Thread(target=work, name=f"{action.name}-{request_id[:8]}", daemon=True).start()
    try:
        yield _head(app, event, request_id)
        record["first_token_ms"] = round((time.monotonic() - started) * 1000, 1)
        while not done.wait(PROGRESS_SECONDS):
            elapsed = time.monotonic() - started
            yield sse.event({"elapsed_seconds": round(elapsed, 1),
                             **({"estimated_seconds": round(estimate, 1)} if estimate is not None else {})},
                            "progress")
        if "error" in outcome:
            record["stream_error"] = outcome["error"].code
            yield streaming.error_event(outcome["error"])
        else:
            body = outcome["body"]
            made = app.kind.made_images(body, action)
            if made is not None:
                record["images"] = made
            yield sse.event(json.loads(json_response(200, body)["body"]), "result")
    finally:
        if not done.is_set():  # the reader stopped first (a caller that hung up): the work stops at its next step
            gone.set()
            record["abandoned"] = True
        record["model_latency_ms"] = outcome.get("model_ms")
        app.write_record(record, 200, started)
