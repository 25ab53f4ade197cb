"""What the API answers to a grid of requests, against the reviewed tables tests/lambda/snapshots/answers/<kind>.json
(one per kind) and jobs.json.

The other handler tests state the rules; this table notices what they do not name. Every route of a deployment with
one model of each kind and protocol the kinds registry declares (model_api.kinds: a new kind or protocol is in the
table without an edit here, named <kind>-<protocol>) gets: its action's example body; that body with each field
(and each field of a nested object) removed, set to each of a set of awkward values, and with an unknown field
beside it; broken bodies (none, blank, not JSON, a list, duplicate keys, base64, too large); queries on GET routes;
Accept headers; and the example again with each way the SageMaker runtime can fail. An async model of each kind
(<kind>-async) takes its jobs through submit, queued, done, failed, refused, unknown, another model's route and
S3 failing to store or read them. Each row is the request and what
came back: the status, the headers, the body (presigned URLs, ids, dates and the bucket's name normalized), every
model call the Lambda made (path, types, body), the objects stored and the request's log line with its metrics
(timings normalized). A changed status, error code, header, bound, model parameter or stored object fails here with
the rows that changed.

Error messages are reviewed as sentences, not per row: a row keeps its error's code (and OpenAI's type and param),
and each file's "messages" entry lists every message its rows got with how many got it, so rewording one message is
a one-line change. Which message a rule gives is asserted where the rule is tested (test_handler.py and the others).
After an intended change, `make snapshots` rewrites the tables and `git diff tests/lambda/snapshots` is the review.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError
from lambda_rig import REGION, FakeAsyncEndpoint, _Raw, load_handler, tiny_png
from model_api.kinds import KIND_MODULES
from model_api.kinds.text_to_image import FIELD_ALIASES
from model_api.log_json import LambdaJsonFormatter
from model_api.routes import ModelInfo, Route, catalog_to_json, model_actions, routes
from test_handler import ENDPOINT_FAILURES, model_error

TABLES = Path(__file__).parent / "snapshots" / "answers"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"  # make snapshots
JOBS = "jobs"  # the async models' table

# The product's kinds (a test may register another one in KINDS meanwhile: not these tables' business).
PRODUCT_KINDS = {module.KIND.name: module.KIND for module in KIND_MODULES}
# name -> (kind, protocol): one model of each kind and each protocol the kind speaks.
MODELS = {f"{kind}-{protocol}": (kind, protocol) for kind, spec in PRODUCT_KINDS.items() for protocol in spec.protocols}
# Hosted async (jobs): one model of each kind, in its first protocol.
ASYNC_MODELS = {f"{kind}-async": (kind, spec.protocols[0]) for kind, spec in PRODUCT_KINDS.items()}
# A JumpStart model is an existing endpoint: no instance type of ours.
CATALOG = [ModelInfo(name, kind, f"api-{name}", None if protocol == "jumpstart" else "ml.g5.xlarge")
           for name, (kind, protocol) in MODELS.items()] + [
    ModelInfo(name, kind, f"api-{name}", "ml.g5.xlarge", "async") for name, (kind, _) in ASYNC_MODELS.items()]
MODEL_OF_ROUTE = {f"{r.method} {r.path}": r.model for r in routes(CATALOG)}  # the function that serves each route
ASYNC_ENV = {"MODEL_HOSTING": "async", "JOB_TIMEOUT_SECONDS": "1200", "JOB_TTL_SECONDS": "3600"}
ASYNC_FAILURES = [("endpoint missing", 400, "ValidationError", "Endpoint api-x of account 1 not found."),
                  ("throttled", 400, "ThrottlingException", "Rate exceeded"),
                  ("access denied", 400, "AccessDeniedException", "no"),
                  ("unavailable", 503, "ServiceUnavailable", "down"),
                  ("internal failure", 500, "InternalFailure", "oops")]
AWKWARD = [None, "", " ", "\u200b\u200b", "\ud800", "x", -1, 0, 2.5, 2**31, True, [], ["x"], {}]
QUERY_VALUES = ["", "x", "-1", "0", "1", "7", "64", "2_56", "\u0662\u0665\u0666", "1e3", "9" * 30]
ACCEPTS = ["image/png", "image/jpeg", "text/html", "*/*", "application/json"]
FAILURES = [case for case in ENDPOINT_FAILURES if case[0] != "body over 6 MB"] + [  # 6 MB a row: the handler tests
    # The container's own refusals: TGI's 422, a pipeline's bare 400, our inference code's marked 400.
    (f"model error {status}: {message}", lambda e, status=status, message=message: e.fails(
        424, "ModelError", model_error(status, message))) for status, message in [
        (400, "Input validation error"), (422, "Input validation error: inputs too long"),
        (400, "invalid input: the conversation is too long"), (404, "not here")]] + [
    # JPEG's start and end markers and nothing between: not an image (an answer cut down to its ends).
    ("a jpeg of only its markers", lambda e: e.returns(json.dumps(
        {"generated_images": [base64.b64encode(b"\xff\xd8\xff\xd9").decode()]}).encode(), "application/json"))]
PNG = tiny_png()
JPEG = base64.b64decode(  # a 1x1 JPEG
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQ"
    "Ew8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k=")


def model_answer(body: dict, accept: str) -> tuple[bytes, str]:
    """A right answer for whatever the Lambda asked (an image model's format by Accept, text kinds by body)."""
    count = body.get("num_images_per_prompt") or body.get("parameters", {}).get("num_images_per_prompt") or 1
    if accept == "image/png":
        return PNG, accept
    if accept == "application/x-png-sequence":
        return PNG * count, accept
    if accept.startswith("application/json;jpeg"):
        return json.dumps({"generated_images": [base64.b64encode(JPEG).decode()] * count}).encode(), "application/json"
    if body.get("task") == "embeddings":
        return json.dumps({"embeddings": [[0.6, 0.8]] * len(body["inputs"])}).encode(), "application/json"
    if "messages" in body or body.get("task") == "chat":
        return json.dumps({"reply": "Hello!"}).encode(), "application/json"
    if isinstance(body.get("inputs"), list):  # the feature-extraction pipeline: token vectors per input
        return json.dumps([[[[0.6, 0.8], [0.8, 0.6]]]] * len(body["inputs"])).encode(), "application/json"
    return json.dumps([{"generated_text": " once"}]).encode(), "application/json"


class TableEndpoint:
    """Answers every InvokeEndpoint of one client right (model_answer), unless a failure is queued (the handler
    tests' ENDPOINT_FAILURES use the same interface); records each call."""

    def __init__(self, client):
        self.calls: list[dict] = []
        self.answers: list = []
        client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", self._answer)

    def returns(self, body: bytes, content_type: str = "image/png"):
        self.answers.append(("ok", body, content_type))

    def fails(self, status: int, error_type: str, body: dict):
        self.answers.append(("error", status, error_type, body))

    def raises(self, exception: Exception):
        self.answers.append(("raise", exception))

    def _answer(self, request, **_):
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        body = json.loads(request.body)
        self.calls.append({"path": request.url.split(".com", 1)[-1], "content_type": headers.get("Content-Type"),
                           "accept": headers.get("Accept"), "body": body})
        answer = self.answers.pop(0) if self.answers else ("ok", *model_answer(body, headers.get("Accept", "")))
        if answer[0] == "raise":
            raise answer[1]
        if answer[0] == "ok":
            return AWSResponse(request.url, 200, {"Content-Type": answer[2]}, _Raw(answer[1]))
        _, status, error_type, error_body = answer
        return AWSResponse(request.url, status, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type},
                           _Raw(json.dumps(error_body).encode()))


class RequestLines(logging.Handler):
    """The handler's per-request log lines (the ones with its metrics), as Lambda's JSON log format writes them."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[dict] = []
        self.formatter = LambdaJsonFormatter()

    def emit(self, record):
        if hasattr(record, "latency_ms"):
            line = json.loads(self.formatter.format(record))
            line.pop("timestamp")
            line["_aws"]["Timestamp"] = 0
            self.lines.append({k: "<ms>" if k.endswith("latency_ms") or k.endswith("Latency") else v
                               for k, v in line.items()} | {"message": re.sub(r" in \d+ ms$", " in <ms>",
                                                                              line["message"])})

    def take(self) -> list[dict]:
        lines, self.lines = self.lines, []
        return lines


@pytest.fixture
def request_log():
    logger, handler = logging.getLogger("model_api"), RequestLines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def deployment(bucket, moto_endpoint, monkeypatch, request_log):
    """A handler per model, each with its endpoint; seeds drawn by the handler are fixed."""
    monkeypatch.setattr(secrets, "randbelow", lambda n: 7 % n)
    job_ids = iter(range(1, 10_000))
    monkeypatch.setattr(secrets, "token_hex", lambda n: f"{next(job_ids):0{2 * n}x}")
    handlers, endpoints, async_endpoints = {}, {}, {}
    for name, (kind, protocol) in {**MODELS, **ASYNC_MODELS}.items():
        handlers[name] = load_handler({
            "AWS_REGION": REGION, "ENDPOINT_NAME": f"api-{name}", "BUCKET_NAME": bucket.name,
            "URL_TTL_SECONDS": "900", "AWS_ENDPOINT_URL_S3": moto_endpoint, "S3_ADDRESSING_STYLE": "path",
            "MODEL_NAME": name, "MODEL_KIND": kind, "MODEL_PROTOCOL": protocol, "MODEL_CATALOG": catalog_to_json(CATALOG),
            **(ASYNC_ENV if name in ASYNC_MODELS else {}),
        })
        endpoints[name] = TableEndpoint(handlers[name].endpoint._client)
        if name in ASYNC_MODELS:
            async_endpoints[name] = FakeAsyncEndpoint(handlers[name].endpoint._client, bucket.name, name)
    return SimpleNamespace(handlers=handlers, endpoints=endpoints, async_endpoints=async_endpoints, bucket=bucket,
                           log=request_log)


def event(route, body=None, query=None, headers=None, base64_body=False, method=None) -> dict:
    return {"resource": route.path, "path": route.path, "httpMethod": method or route.method,
            "headers": {"Content-Type": "application/json", **(headers or {})},
            "queryStringParameters": query, "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": body, "isBase64Encoded": base64_body,
            "requestContext": {"requestId": "gateway-request", "stage": "v1", "httpMethod": method or route.method,
                               "resourcePath": route.path}}


def _show(value) -> str:
    if isinstance(value, str) and len(value) > 20:
        return f"<{len(value)} characters>"
    if isinstance(value, list) and len(value) > 3:
        return f"<list of {len(value)}>"
    return repr(value)


def _bound_values(schema: dict, item) -> list:
    """Values on both sides of each bound a property's schema states (and each of its enum values, and one more)."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    out = list(schema.get("enum", []))
    if "enum" in schema:
        out.append("nope")
    if "minimum" in schema:
        out += [schema["minimum"] - 1, schema["minimum"]] + ([schema["minimum"] + 0.5] if "number" in types else [])
    if "maximum" in schema:
        out += [schema["maximum"], schema["maximum"] + 1] + ([schema["maximum"] - 0.5] if "number" in types else [])
    if "string" in types and "maxLength" in schema:
        out += ["x" * schema["maxLength"], "x" * (schema["maxLength"] + 1)]
    if "string" in types and schema.get("minLength", 0) > 1:
        out.append("x" * (schema["minLength"] - 1))
    if "array" in types and "maxItems" in schema:
        out += [[item] * schema["maxItems"], [item] * (schema["maxItems"] + 1)]
    return out


def _variants(example: dict, schema: dict) -> list[tuple[str, dict]]:
    """(what changed, body): each field of the example removed; each property of the request schema set to each
    awkward value and to both sides of its bounds; one level down (an object's properties, an array of objects'
    first item's) the same; an unknown field."""
    out = [(f"without {key}", {k: v for k, v in example.items() if k != key}) for key in example]
    for key, prop in schema.get("properties", {}).items():
        value = example.get(key)
        item = value[0] if isinstance(value, list) and value else "x"
        out += [(f"{key}={_show(v)}", {**example, key: v}) for v in [*AWKWARD, *_bound_values(prop, item)]]
        inner_schema = prop if prop.get("type") == "object" else prop.get("items") \
            if prop.get("type") == "array" and isinstance(prop.get("items"), dict) \
            and prop["items"].get("type") == "object" else None
        if inner_schema is None:
            continue
        nested = value if isinstance(value, dict) else item if isinstance(item, dict) else {}

        def put(changed, key=key, value=value):
            return {**example, key: [changed, *value[1:]] if isinstance(value, list) else changed}
        for inner in nested:
            out.append((f"{key}.{inner} removed", put({k: v for k, v in nested.items() if k != inner})))
        for inner, inner_prop in inner_schema.get("properties", {}).items():
            out += [(f"{key}.{inner}={_show(v)}", put({**nested, inner: v}))
                    for v in [*AWKWARD, *_bound_values(inner_prop, "x")]]
    out.append(("an unknown field", {**example, "unknown_field": 1}))
    # The other shapes a body may take: Hugging Face style (inputs + parameters) and the field aliases.
    text = next((v for v in example.values() if isinstance(v, str)), "x")
    out += [(f"inputs + parameters={_show(v)}", {"inputs": text, "parameters": v})
            for v in [*AWKWARD, {"num_inference_steps": 5}, {"steps": 5, "num_inference_steps": 6}]]
    out += [("inputs beside the example", {**example, "inputs": text}),
            ("parameters without inputs", {**example, "parameters": {}})]
    for alias, name in FIELD_ALIASES.items():
        out += [(f"alias {alias}", {**example, alias: 5}), (f"alias {alias} beside {name}", {**example, alias: 5, name: 6})]
    return out


def cases(handlers: dict) -> list[tuple[str, str, dict, object]]:
    """(route label, case, event, failure arrangement or None) for every row; handlers: each model's (its config
    bounds the request schema)."""
    out = []
    actions = {m.name: {a.name: a for a in model_actions(m)} for m in CATALOG}
    full = set()  # every (model, action) gets the whole grid once, at its first route; its other routes the example
    for route in routes(CATALOG):
        if route.model in ASYNC_MODELS:  # jobs: job_rows
            continue
        label = f"{route.method} {route.path}"
        action = actions[route.model].get(route.action)
        if action is None:  # endpoint, catalog, model lists
            out.append((label, "plain", event(route), None))
            out.append((label, "a query", event(route, query={"x": "1"}), None))
            continue
        example = json.loads(action.example)
        if "model" in example:  # another API's shape names the model: the route's own
            example["model"] = route.model
        schema = action.schema(handlers[route.model].config) if action.schema else {}
        if route.method == "GET":
            out.append((label, "no query", event(route), None))
            plain = {k: str(x) for k, x in example.items()}
            for key in schema.get("properties", {}):
                out += [(label, f"?{key}={v!r}", event(route, query={**plain, key: v}), None) for v in QUERY_VALUES]
            continue
        out.append((label, "example", event(route, json.dumps(example)), None))
        if (route.model, route.action) in full:
            continue
        full.add((route.model, route.action))
        out += [(label, name, event(route, json.dumps(body)), None) for name, body in _variants(example, schema)]
        text = json.dumps(example)
        out += [
            (label, "no body", event(route, None), None),
            (label, "blank body", event(route, "  "), None),
            (label, "not JSON", event(route, "{prompt: x}"), None),
            (label, "a list", event(route, "[]"), None),
            (label, "duplicate keys", event(route, text[:-1] + ", " + text[1:]), None),
            (label, "base64", event(route, base64.b64encode(text.encode()).decode(), base64_body=True), None),
            (label, "bad base64", event(route, "%%%", base64_body=True), None),
            (label, "text/plain", event(route, text, headers={"Content-Type": "text/plain"}), None),
            (label, "1 MB", event(route, json.dumps({**example, "pad": "x" * 1_000_000})), None),
            (label, "a 1 MB field", event(route, json.dumps({**example, next(iter(example)): "x" * 1_000_000})), None),
            (label, "PUT", event(route, text, method="PUT"), None),
        ]
        out += [(label, f"Accept: {a}", event(route, text, headers={"Accept": a}), None) for a in ACCEPTS]
        out += [(label, f"endpoint: {name}", event(route, text), arrange) for name, arrange, *_ in FAILURES]
    unique = {}
    for row in out:  # a value can be both awkward and a bound: tried once
        unique.setdefault((row[0], row[1]), row)
    return list(unique.values())


def _normalized(value, bucket: str):
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = text.replace(bucket, "<bucket>")
    text = re.sub(r"(https?://[^\"?\s]+)\?[^\"\s]*", r"\1?<signed>", text)
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", text)
    text = re.sub(r"\d{4}/\d{2}/\d{2}", "<date>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "<time>", text)
    text = re.sub(r"\"created\": \d+", "\"created\": 0", text)
    text = re.sub(r"http://127\.0\.0\.1:\d+", "<s3>", text)
    return json.loads(text)


def answer(deployment, route_label: str, request: dict, arrange) -> dict:
    model = MODEL_OF_ROUTE[route_label]
    endpoint = deployment.endpoints[model]
    endpoint.calls.clear()
    if arrange is not None:
        arrange(endpoint)
    response = deployment.handlers[model].handle(request, SimpleNamespace(aws_request_id="lambda-request"))
    endpoint.answers.clear()
    body = response.get("body")
    if response.get("isBase64Encoded"):
        body = f"<{len(base64.b64decode(body))} bytes>"
    else:
        try:
            body = json.loads(body)
        except (TypeError, ValueError):
            pass
    stored = []
    if PRODUCT_KINDS[MODELS[model][0]].stores_images:  # the others have no bucket to write to
        stored = [o["Key"] for o in deployment.bucket.client.list_objects_v2(Bucket=deployment.bucket.name)
                  .get("Contents", [])]
        for key in stored:
            deployment.bucket.client.delete_object(Bucket=deployment.bucket.name, Key=key)
    return _normalized({"status": response["statusCode"], "headers": response.get("headers"), "body": body,
                        "model_calls": endpoint.calls, "stored": stored, "log": deployment.log.take()},
                       deployment.bucket.name)


STORAGE_FAILURES = [
    ("slow down", ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "S3")),
    ("access denied", ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "S3")),
    ("a KMS key refused", ClientError({"Error": {"Code": "KMS.DisabledException", "Message": "disabled"}}, "S3")),
    ("unreachable", EndpointConnectionError(endpoint_url="https://s3")),
]


@contextmanager
def _failing(client, operation: str, error: Exception):
    """The client's operation raises error meanwhile (as botocore raises it: after its retries)."""
    original = getattr(client, operation)

    def fail(**kwargs):
        raise error

    setattr(client, operation, fail)
    try:
        yield
    finally:
        setattr(client, operation, original)


def _job_event(path: str, job_id: str) -> dict:
    return {**event(Route(path, "GET", "", "job")), "pathParameters": {"job_id": job_id},
            "path": path.replace("{job_id}", job_id)}


def job_rows(deployment) -> list[dict]:
    """Each async model's jobs through their life: submitted, queued, done (and read again), failed in each way the
    model can fail, refused by the runtime, unknown, malformed, read through another model's route. The bucket keeps
    what each step wrote (the rows show it)."""
    rows = []
    client, bucket = deployment.bucket.client, deployment.bucket.name

    def row(label, case, model, request):
        response = deployment.handlers[model].handle(request, SimpleNamespace(aws_request_id="lambda-request"))
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
        rows.append({"route": label, "case": case, "answer": _normalized(
            {"status": response["statusCode"], "headers": response.get("headers"),
             "body": json.loads(response["body"]), "stored": keys, "log": deployment.log.take()}, bucket)})
        return json.loads(response["body"])

    def put(uri: str, data: bytes):
        client.put_object(Bucket=bucket, Key=uri.split(f"{bucket}/", 1)[1], Body=data)

    for model, (kind, _) in ASYNC_MODELS.items():
        other = next(m for m in ASYNC_MODELS if m != model)
        main = model_actions(next(m for m in CATALOG if m.name == model))[0]
        example = main.example
        submit_route = Route(f"/models/{model}/jobs", "POST", model, main.name)
        label = f"POST /models/{model}/jobs"
        sent = deployment.async_endpoints[model]
        own = f"/models/{model}/jobs/{{job_id}}"

        def submit(case):
            return row(label, case, model, event(submit_route, example))["job_id"]

        def answer_for(job_id):
            queued = json.loads(client.get_object(Bucket=bucket, Key=f"jobs/{job_id}/input-{model}.json")["Body"].read())
            return model_answer(queued, sent.requests[-1]["headers"]["X-Amzn-SageMaker-Accept"])[0]

        job = submit("submitted")
        row(f"GET {own}", "queued", model, _job_event(own, job))
        put(f"{sent.output_path}/{job}.out", answer_for(job))
        row(f"GET {own}", "done", model, _job_event(own, job))
        row(f"GET {own}", "done, read again", model, _job_event(own, job))
        theirs = f"/models/{other}/jobs/{{job_id}}"
        row(f"GET {theirs}", f"done, a job of {model}", other, _job_event(theirs, job))
        for case, failure in [("refused input", b"invalid input: the prompt is too long"),
                              ("model failure", b"CUDA out of memory. " + b"x" * 400)]:
            job = submit(f"submitted ({case})")
            put(f"{sent.failure_path}/{job}-error.out", failure)
            row(f"GET {own}", f"failed: {case}", model, _job_event(own, job))
        job = submit("submitted (a wrong answer)")
        put(f"{sent.output_path}/{job}.out", b"not an answer")
        row(f"GET {own}", "failed: a wrong answer", model, _job_event(own, job))
        for job_id in ["0" * 32, "not-a-job", "A" * 32, "../../images"]:
            row(f"GET {own}", f"job {job_id!r}", model, _job_event(own, job_id))
        for case, status, error_type, message in ASYNC_FAILURES:
            sent.fails(status, error_type, message)
            row(label, f"runtime: {case}", model, event(submit_route, example))
        row(label, "invalid request", model, event(submit_route, "{}"))
        store = deployment.handlers[model].jobs.client
        for case, error in STORAGE_FAILURES:
            with _failing(store, "put_object", error):
                row(label, f"storage: {case}", model, event(submit_route, example))
            job = submit(f"submitted (then storage: {case})")
            with _failing(store, "get_object", error), _failing(store, "head_object", error):
                row(f"GET {own}", f"storage: {case}", model, _job_event(own, job))
        for key in [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]:
            client.delete_object(Bucket=bucket, Key=key)
    reader = next(r for r in routes(CATALOG) if r.path == "/jobs/{job_id}")
    row("GET /jobs/{job_id}", "unknown job", reader.model, _job_event(reader.path, "f" * 32))
    return rows


def _with_metric_directives_by_number(rows: list[dict]) -> list[dict]:
    """Each log line's EMF directives (which metrics CloudWatch extracts, by which dimensions) are one of a few: the
    first row lists each in full under "metric_directives", every line names its number."""
    seen: dict[str, int] = {}
    for row in rows:
        for line in row["answer"].get("log", []):
            text = json.dumps(line["_aws"]["CloudWatchMetrics"], sort_keys=True)
            line["_aws"]["CloudWatchMetrics"] = seen.setdefault(text, len(seen))
    return [{"route": "-", "case": "metric_directives", "answer": [json.loads(t) for t in seen]}, *rows]


MESSAGE = "<in messages>"


def _with_messages_listed(rows: list[dict]) -> list[dict]:
    """Each error's message moves to one "messages" row (message -> how many rows got it); the rows keep the rest
    of the error (code, and OpenAI's type and param)."""
    counts: dict[str, int] = {}
    for row in rows:
        error = row["answer"].get("body", {}).get("error") if isinstance(row["answer"].get("body"), dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            counts[error["message"]] = counts.get(error["message"], 0) + 1
            error["message"] = MESSAGE
    return [{"route": "-", "case": "messages", "answer": dict(sorted(counts.items()))}, *rows]


def table_of(route_label: str) -> str:
    """The table a row belongs to: its model's kind, or jobs for the async models' rows."""
    model = MODEL_OF_ROUTE.get(route_label)
    return JOBS if model is None or model in ASYNC_MODELS else MODELS[model][0]


def tables(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {name: [] for name in [*PRODUCT_KINDS, JOBS]}
    for row in rows:
        out[table_of(row["route"])].append(row)
    return {name: _with_metric_directives_by_number(_with_messages_listed(part)) for name, part in out.items()}


def stored_tables() -> dict[str, list[dict]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(TABLES.glob("*.json"))}


def test_every_request_gets_the_answer_the_reviewed_table_gives(deployment):
    rows = [{"route": label, "case": case, "answer": answer(deployment, label, request, arrange)}
            for label, case, request, arrange in cases(deployment.handlers)]
    rows += job_rows(deployment)
    now = tables(rows)
    if UPDATE:
        TABLES.mkdir(parents=True, exist_ok=True)
        for stale in set(stored_tables()) - set(now):
            (TABLES / f"{stale}.json").unlink()
        for name, part in now.items():
            (TABLES / f"{name}.json").write_text(
                "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False, sort_keys=True,
                                                # one message a line: rewording one is a one-line diff
                                                indent=1 if row["case"] == "messages" else None) for row in part)
                + "\n]\n")
    stored = stored_tables()
    assert sorted(stored) == sorted(now), "the tables are one per kind and jobs: `make snapshots`"
    changed = []
    for name, part in now.items():
        expected = {(row["route"], row["case"]): row for row in stored[name]}
        for row in part:
            before = expected.pop((row["route"], row["case"]), None)
            if before != json.loads(json.dumps(row, ensure_ascii=False)):
                changed.append(f"{name}: {row['route']} [{row['case']}]\n  table: "
                               f"{json.dumps(before and before['answer'])[:600]}\n  now:   {json.dumps(row['answer'])[:600]}")
        changed += [f"{name}: {route} [{case}]: in the table, no longer tried" for route, case in expected]
    assert not changed, (f"{len(changed)} of {len(rows)} answers differ from the reviewed tables (intended? `make "
                         "snapshots`, then review git diff):\n" + "\n".join(changed[:30]))


def _rows(part: list[dict]) -> list[dict]:
    return [row for row in part if row["route"] != "-"]


def test_the_table_covers_every_route_and_every_outcome_class():
    stored = stored_tables()
    for name, part in stored.items():
        assert [row["case"] for row in part[:2]] == ["metric_directives", "messages"], name
    rows = [row for part in stored.values() for row in _rows(part)]
    assert {row["route"] for row in rows} >= {f"{r.method} {r.path}" for r in routes(CATALOG)
                                              if r.model not in ASYNC_MODELS or "jobs" in r.path}
    statuses = {row["answer"]["status"] for row in rows}
    assert {200, 202, 400, 404, 405, 406, 413, 429, 500, 502, 503, 504} <= statuses, statuses
    job_states = {row["answer"]["body"].get("status") for row in rows if "jobs" in row["route"]}
    assert job_states >= {"queued", "done", "failed"}, job_states
    for row in rows:
        if row["case"] == "example":  # every POST action's example succeeds and reaches its model
            assert row["answer"]["status"] == 200, row
            assert row["answer"]["model_calls"], row
        if not row["case"].startswith(("endpoint: ", "runtime: ", "storage: ")):  # a client's request, however wrong, is never a
            # 5xx (the rows where the runtime or S3 fails are not the client's doing)
            assert row["answer"]["status"] < 500, row
        if row["answer"]["status"] >= 400 and "jobs" not in row["route"]:  # a refused one stores nothing (the job
            # rows show what the bucket holds: earlier steps' objects)
            assert row["answer"]["stored"] == [], row
        body = row["answer"].get("body")
        if isinstance(body, dict) and "error" in body:  # every error has its code, its message is listed
            assert body["error"]["code"] and body["error"]["message"] == MESSAGE, row
    for name, part in stored.items():  # each listed message was given as often as the file says
        given = sum(isinstance(r["answer"].get("body"), dict) and "error" in r["answer"]["body"] for r in _rows(part))
        assert sum(part[1]["answer"].values()) == given, name


# What Python, not the API, would say: its literals, its parser's and runtime's own sentences, a regular expression.
PYTHON_INTERNALS = re.compile(r"\b(None|True|False)\b|'[^'\s]*'|Expecting |\(char \d+\)|utf-8-sig|recursion|"
                              r"Traceback|[A-Za-z]+Error\b|\^\(|\[0-9\]|\\d")


def test_no_answer_shows_python_internals():
    """Every message a caller can get names the field and what is expected in the API's (JSON's) words."""
    messages = [(name, message) for name, part in stored_tables().items() for message in part[1]["answer"]]
    assert len(messages) > 800
    leaks = [m for m in messages if PYTHON_INTERNALS.search(m[1])]
    assert not leaks, "\n".join(f"{name}: {message}" for name, message in leaks[:20])
