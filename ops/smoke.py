"""`make smoke`: after a deploy, call every route of every deployed model the way a client would and print a table.

    python -m ops.smoke                     # the deployed stack: its outputs give the URL, its key is fetched
    python -m ops.smoke --url URL --key KEY # any deployment, or local mode (how the tests run it)

Per model: a small valid request on its routes (images are downloaded and checked to be complete PNG/JPEG files,
embeddings to be unit vectors), the catalog and endpoint routes, and requests that must be refused (no key: 403, an
unknown route: 404 naming the routes, an unknown method: 405 with Allow, an empty and an invalid body: 400 in the
API's error shape); for a model deployed with streaming=true its streams too (each ends with its finish, no error
event; images send progress, then a result whose images are checked). Exit 1 if anything is off.
Small requests: 256x256 images with 4 steps, 8 new tokens, so a smoke run costs seconds of GPU. An async model's
actions must answer 202 with a job; its first job is polled (GET /jobs/<job_id>) until done or --job-wait seconds,
which must cover an instance start when it has scaled to zero, and an unknown job id must be 404.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Optional

from model_api import kinds as _kinds
from model_api import routes as _routes
from model_api import sse as _sse

# What the smoke test sends and checks, per action: each kind's own (lambda/model_api/kinds).
ACTIONS = _kinds.actions()


@dataclass
class Result:
    method: str
    path: str
    status: Optional[int]
    milliseconds: float
    ok: bool
    note: str


class Api:
    def __init__(self, base_url: str, key: str, timeout: float = 60):
        self.base_url, self.key, self.timeout = base_url.rstrip("/"), key, timeout

    def call(self, method: str, path: str, body=None, key: Optional[str] = "", query: str = ""):
        """(status, parsed JSON or None, headers, milliseconds). key "" means the API key, None means none."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}{query}", data=data, method=method)
        if key is not None:
            request.add_header("x-api-key", key or self.key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw, headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, headers = error.code, error.read(), dict(error.headers)
        except OSError as error:
            return None, {"error": {"message": str(error)}}, {}, (time.monotonic() - started) * 1000
        milliseconds = (time.monotonic() - started) * 1000
        try:
            return status, json.loads(raw), headers, milliseconds
        except ValueError:
            return status, None, headers, milliseconds


    def stream(self, path: str, body: dict, accept: str = "text/event-stream"):
        """POST expecting server-sent events: (status, [(event name, data)], headers, milliseconds to the first
        event, milliseconds in all); a JSON answer instead (an error) comes back as one ("json", body) event."""
        request = urllib.request.Request(f"{self.base_url}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"x-api-key": self.key, "Content-Type": "application/json",
                                                  "Accept": accept})
        started = time.monotonic()
        first = None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, headers = response.status, dict(response.headers)
                decoder, events = _sse.Decoder(), []
                while chunk := response.read1(65536):
                    events += decoder.feed(chunk)
                    if events and first is None:
                        first = (time.monotonic() - started) * 1000
        except urllib.error.HTTPError as error:
            status, headers = error.code, dict(error.headers)
            raw = error.read()
            try:
                events = [("json", json.loads(raw))]
            except ValueError:
                events = [("json", raw.decode(errors="replace"))]
        except OSError as error:
            return None, [("json", {"error": {"message": str(error)}})], {}, 0.0, (time.monotonic() - started) * 1000
        total = (time.monotonic() - started) * 1000
        return status, events, headers, first if first is not None else total, total


def fetch(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def check_answer(action: str, answer: dict, fetcher: Callable[[str], bytes]) -> str:
    """'' when the answer is right for the action, else what is wrong."""
    return ACTIONS[action].check(answer, fetcher) if action in ACTIONS else ""


def error_shape(answer) -> str:
    error = (answer or {}).get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str) or not isinstance(
            error.get("message"), str):
        return "body is not {\"error\": {\"code\", \"message\"}}"
    return ""


def run(api: Api, fetcher: Callable[[str], bytes] = fetch, only: Optional[set] = None, job_wait: float = 900,
        sleep: Callable[[float], None] = time.sleep) -> list[Result]:
    results: list[Result] = []
    first_jobs: dict[str, tuple[str, str]] = {}  # model -> (action, job id) of its first job

    def record(method, path, status, ms, expected, note=""):
        ok = status == expected and not note
        results.append(Result(method, path, status, ms, ok, note or ("ok" if ok else f"expected {expected}")))

    status, catalog, _, ms = api.call("GET", _routes.CATALOG_PATH)
    models = (catalog or {}).get("endpoints") if status == 200 else None
    record("GET", _routes.CATALOG_PATH, status, ms, 200, "" if models else f"no catalog: {catalog}")
    if not models:
        return results
    infos = [_routes.ModelInfo(m["name"], m["kind"], m["endpoint_name"], m.get("instance_type"),
                               m.get("hosting", "realtime"), streaming=bool(m.get("streaming")))
             for m in models if not only or m["name"] in only]
    hosted_async = {m.name for m in infos if m.is_async}
    for route in _routes.routes(infos):
        if route.action in ("catalog", "job"):  # jobs are read below, with the ids of real jobs
            continue
        if route.action in ACTIONS and ACTIONS[route.action].stream_only:  # streams are checked below
            continue
        if route.action == "endpoint":
            status, answer, _, ms = api.call("GET", route.path)
            record("GET", route.path, status, ms, 200,
                   "" if status != 200 or (answer or {}).get("name") == route.model else "wrong model described")
            continue
        if route.action == _routes.OPENAI_MODEL:  # the route's own model, by id
            path = route.path.replace(_routes.MODEL_ID, "/" + route.model)
            status, answer, _, ms = api.call("GET", path)
            record("GET", path, status, ms, 200,
                   "" if status != 200 or (answer or {}).get("id") == route.model else "another model answered")
            continue
        if route.action == _routes.OPENAI_MODELS:
            status, answer, _, ms = api.call("GET", route.path)
            listed = [m.get("id") for m in (answer or {}).get("data") or []] if status == 200 else []
            record("GET", route.path, status, ms, 200,
                   "" if status != 200 or route.model in listed else f"{route.model} is not listed")
            continue
        # An OpenAI body names the model it asks for: the route's own.
        named = {"model": route.model} if _routes.is_openai(route.action) else {}
        if route.method == "GET":  # images by query string
            query = "?" + urllib.parse.urlencode(ACTIONS[route.action].smoke)
            status, answer, _, ms = api.call("GET", route.path, query=query)
        else:
            status, answer, _, ms = api.call("POST", route.path, {**ACTIONS[route.action].smoke, **named})
        if route.model in hosted_async:
            job_id = (answer or {}).get("job_id") if status == 202 else None
            if job_id:
                first_jobs.setdefault(route.model, (route.action, job_id))
            record(route.method, route.path, status, ms, 202,
                   "" if status != 202 or job_id else f"no job id: {str(answer)[:100]}")
        else:
            note = check_answer(route.action, answer or {}, fetcher) if status == 200 else error_text(answer)
            record(route.method, route.path, status, ms, 200, note)
        if route.method == "POST":
            for body, what in (({**ACTIONS[route.action].smoke_invalid, **named}, "invalid"), ({}, "empty")):
                status, answer, _, ms = api.call("POST", route.path, body)
                record("POST", f"{route.path} ({what} body)", status, ms, 400, error_shape(answer))
    for info in infos:
        if info.streaming:
            results += streams(api, info, fetcher)
    for model, (action, job_id) in first_jobs.items():
        path = f"{_routes.JOB_PATH.split('{')[0]}{job_id}"
        started, answer, status, ms = time.monotonic(), None, None, 0.0
        while True:
            status, answer, _, ms = api.call("GET", path)
            if status != 200 or (answer or {}).get("status") != "queued" or time.monotonic() - started > job_wait:
                break
            sleep(5)
        state = (answer or {}).get("status")
        if status == 200 and state == "done":
            note = check_answer(action, answer, fetcher)
        elif status == 200 and state == "queued":
            note = f"still queued after {job_wait:g} s (an instance may still be starting; --job-wait)"
        elif status == 200 and state == "failed":
            note = "job failed: " + error_text(answer)
        elif status == 200:
            note = f"unexpected job status {state!r}"
        else:
            note = error_text(answer)
        record("GET", f"/jobs/<{model} job>", status, ms, 200, note)
    if first_jobs:
        status, answer, _, ms = api.call("GET", f"{_routes.JOB_PATH.split('{')[0]}{'0' * 32}")
        record("GET", "/jobs/<unknown id>", status, ms, 404, error_shape(answer))
    first = _routes.routes(infos)[0]
    status, answer, _, ms = api.call(first.method, first.path, ACTIONS[first.action].smoke if first.method == "POST" else None,
                                     key=None, query="" if first.method == "POST" else "?prompt=x")
    # 401 with the key authorizer (bearer_keys: no key at all), 403 without it: either way refused by the gateway.
    record(first.method, f"{first.path} (no key)", status, ms, status if status in (401, 403) else 403,
           error_shape(answer))
    # Unknown routes and methods answer from the API's fallback (lambda/unrouted.py), not API Gateway's "Missing
    # Authentication Token": the 404 names the routes there are, the 405 the methods the path has.
    status, answer, _, ms = api.call("GET", "/no-such-route")
    listed = first.path in str(((answer or {}).get("error") or {}).get("message", ""))
    record("GET", "/no-such-route", status, ms, 404,
           error_shape(answer) or ("" if status != 404 or listed else f"the 404 does not list the routes: {answer}"))
    status, answer, headers, ms = api.call("DELETE", first.path)
    allow = next((v for k, v in headers.items() if k.lower() == "allow"), "")
    record("DELETE", f"{first.path} (no such method)", status, ms, 405,
           error_shape(answer) or ("" if status != 405 or first.method in allow else f"Allow header {allow!r} "
                                   f"does not name {first.method}"))
    return results


@dataclass(frozen=True)
class StreamCase:
    """How one action of a streaming model is asked to stream, and how its stream ends (make smoke and the
    integration tests' assertions, tests/integ/deployed_api.py, both read it)."""

    body: dict
    accept: str  # the request's Accept: text/event-stream
    finish: str  # "result" (images: progress, then the answer), "done" (OpenAI's [DONE]), "tgi" (the last token)


def stream_case(action, model: str) -> Optional[StreamCase]:
    """The stream an action of a streaming model answers with (None: it answers at once): images with progress
    events, an adapted action (OpenAI's) with stream true, TGI's own with stream true (or as it is, when stream-only)."""
    smoke = ACTIONS[action.name].smoke
    if action.progress is not None and action.adapter is None:
        return StreamCase(smoke, _sse.CONTENT_TYPE, "result")
    if action.adapter is not None and action.adapter.stream_reply is not None:
        return StreamCase({**smoke, "model": model, "stream": True}, _sse.CONTENT_TYPE, "done")
    if action.adapter is None and action.stream_reply is not None:
        return StreamCase(smoke if action.stream_only else {**smoke, "stream": True}, _sse.CONTENT_TYPE, "tgi")
    return None


def streams(api: Api, info, fetcher: Callable[[str], bytes]) -> list[Result]:
    """A streaming model's streams (stream_case): each whole and error-free, the last event its finish; an image
    model's result is downloaded and checked. Latency is until the first event."""
    out: list[Result] = []
    prefix = f"/models/{info.name}"
    for action in _routes.model_actions(info):
        case = stream_case(action, info.name)
        if case is None:
            continue
        path = prefix if action is _routes.model_actions(info)[0] else f"{prefix}/{action.name}"
        status, events, _, first, _ = api.stream(path, case.body, case.accept)
        if case.finish == "result":
            name, data = events[-1] if events else (None, None)
            note = error_text(data) if status != 200 else (
                f"the stream ended with {name!r}, not a result" if name != "result"
                else check_answer(action.name, json.loads(data), fetcher))
            out.append(Result("POST", f"{path} (progress)", status, first, status == 200 and not note,
                              note or "ok"))
            continue
        finished = (lambda events: events[-1][1] == "[DONE]") if case.finish == "done" \
            else (lambda events: _tgi_finish(events[-1][1]))
        errors = [data for name, data in events if name in ("error", "json")]
        note = error_text(json.loads(errors[0]) if isinstance(errors[0], str) else errors[0]) if errors else (
            "" if status == 200 and events and finished(events) else "the stream did not end with its finish")
        out.append(Result("POST", f"{path} (stream)", status, first, status == 200 and not note, note or "ok"))
    return out


def _tgi_finish(data: str) -> bool:
    try:
        return isinstance(json.loads(data).get("generated_text"), str)
    except (ValueError, AttributeError):
        return False


def error_text(answer) -> str:
    error = (answer or {}).get("error") if isinstance(answer, dict) else None
    return f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else str(answer)[:200]


def render(results: list[Result]) -> str:
    width = max(len(f"{r.method} {r.path}") for r in results)
    lines = [f"{'route':<{width}}  status  latency  result"]
    for r in results:
        lines.append(f"{r.method + ' ' + r.path:<{width}}  {str(r.status or '-'):>6}  {r.milliseconds:>5.0f} ms  "
                     f"{'ok' if r.ok else 'FAIL: ' + r.note}")
    failed = sum(not r.ok for r in results)
    lines.append("")
    lines.append(f"smoke: {len(results) - failed} of {len(results)} checks fine" + (f", {failed} FAILED" if failed else ""))
    return "\n".join(lines)


def deployed(session, stack_name: str) -> tuple[str, str]:
    """(API base URL, key) of a deployed stack: its outputs, and the key's value from API Gateway; ValueError
    saying what is missing when there is no such stack, or it has no API key (auth other than api_key)."""
    from ops import cdk

    outputs = cdk.stack_outputs(session.client("cloudformation"), stack_name)
    if outputs is None:
        raise ValueError(f"no stack {stack_name} in {session.region_name}: make deploy first (another region? set "
                         "AWS_REGION or -c region=...), or pass SMOKE_ARGS=\"--url U --key K\"")
    if "ApiKeyId" not in outputs or "ApiUrl" not in outputs:
        raise ValueError(f"{stack_name} has no API key output (auth other than api_key?): pass SMOKE_ARGS=\"--url "
                         "U --key K\"")
    key = session.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
    return outputs["ApiUrl"], key


def main(argv=None, out=sys.stdout, session=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="base URL of the API (default: the deployed stack's ApiUrl output)")
    parser.add_argument("--key", help="API key (default: fetched from API Gateway)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE",
                        help="settings naming the stack (stack_name, region), as for deploy")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per request (default 60)")
    parser.add_argument("--model", action="append", default=[], help="only this model (repeatable; default: all)")
    parser.add_argument("--job-wait", type=float, default=900,
                        help="seconds to wait for an async model's first job (default 900: an instance may have to "
                             "start from zero)")
    # Other CDK arguments (make passes CDK_ARGS to every command) are not ours: ignored.
    args, _ = parser.parse_known_args(argv)
    if not (args.url and args.key):
        from ops import cdk

        ready = cdk.settings_and_session(args.context, "make smoke", out, session)
        if ready is None:
            return 2
        settings, session = ready
        try:
            url, key = deployed(session, settings.stack_name)
        except ValueError as error:
            print(f"make smoke: {error}", file=out)
            return 2
        args.url, args.key = args.url or url, args.key or key
    results = run(Api(args.url, args.key, args.timeout), lambda u: fetch(u, args.timeout), set(args.model),
                  job_wait=args.job_wait)
    print(render(results), file=out)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
