"""Lambda entry of the Model API: one function per model. Routes an API Gateway REST proxy event to its pipeline
and writes one structured log line per request. Everything that reaches AWS is created here, once per container.

Environment: MODEL_NAME, MODEL_KIND, ENDPOINT_NAME, MODEL_CATALOG (all models, for routing and GET /endpoint),
BUCKET_NAME and SIGNER_ROLE_ARN (kinds that store images), and the kind's config (model_api.kinds: ImageConfig or
model_api.text.TextConfig);
MODEL_HOSTING=async with JOB_TIMEOUT_SECONDS and JOB_TTL_SECONDS for a model hosted async (BUCKET_NAME holds its
jobs); INFERENCE_COMPONENT for a shared model (the component it invokes on the shared endpoint).
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
import uuid

from model_api import aws, cors, jobs, routes, telemetry, text
from model_api.actions import adapt_event
from model_api.adapters import openai
from model_api.errors import ApiError
from model_api.http import Binary, binary_response, error_response, json_response
from model_api.kinds import kind
from model_api.kinds import text_to_image as images

_ENV = os.environ
log = logging.getLogger("model_api")
# The function's application log level (Lambda sets AWS_LAMBDA_LOG_LEVEL from the stack's log_level: INFO or DEBUG;
# the request line, which carries the metrics, is INFO).
log.setLevel({"TRACE": "DEBUG"}.get(_ENV.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper(),
                                    _ENV.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()))
# Third-party loggers never go below WARNING, whatever the level: botocore's DEBUG lines carry request bodies
# (prompts) and signed URLs, which are never logged.
for _name in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_name).setLevel(logging.WARNING)
NAMESPACE = _ENV.get("METRICS_NAMESPACE", telemetry.NAMESPACE)
# Web origins a browser may call from (cors_origins); empty: no CORS header on any answer.
CORS_ORIGINS = cors.parse_origins(_ENV.get("CORS_ORIGINS"))
# The request being handled: its log record, which the pipelines add to (jobs submitted and finished).
_RECORD: contextvars.ContextVar[dict] = contextvars.ContextVar("record")
MODEL = routes.ModelInfo(
    name=_ENV.get("MODEL_NAME", "stable-diffusion"),
    kind=_ENV.get("MODEL_KIND", "text-to-image"),
    endpoint_name=_ENV["ENDPOINT_NAME"],
)
KIND = kind(MODEL.kind)
CATALOG = routes.catalog_from_env(_ENV) or [MODEL]
REGION = _ENV.get("AWS_REGION", "us-east-1")
ASYNC = _ENV.get("MODEL_HOSTING") == "async"
ENDPOINT = aws.SageMakerEndpoint(aws.sagemaker_runtime_client(_ENV), MODEL.endpoint_name,
                                 inputs_only_fail_400=_ENV.get("MODEL_PROTOCOL") == "pipeline",
                                 job_timeout_seconds=int(_ENV.get("JOB_TIMEOUT_SECONDS", "900")),
                                 job_ttl_seconds=int(_ENV.get("JOB_TTL_SECONDS", "21600")),
                                 component=_ENV.get("INFERENCE_COMPONENT") or None)
CONFIG = KIND.config_from_env(_ENV)
if KIND.stores_images:
    _ENV["SIGNER_ROLE_ARN"]  # required: a deployment error shows at init, not at the first request
    # The S3 clients are off the critical path: built in the background, one after the other, while the first request
    # waits on the model (a cold start's first model call needs only the runtime client). URLs are signed as the
    # read-only signer role, whose sessions outlive every URL (model_api.aws.UrlSigner).
    _WRITER = aws.Deferred(lambda env=dict(_ENV): aws.s3_client(env))
    STORE = aws.S3ImageStore(_WRITER, _ENV["BUCKET_NAME"],
                             signing=aws.Deferred(lambda env=dict(_ENV): aws.url_signing(
                                 env, CONFIG.url_ttl_seconds), after=_WRITER))
JOBS = aws.S3JobStore(STORE._client if KIND.stores_images else aws.s3_client(_ENV),
                      _ENV["BUCKET_NAME"]) if ASYNC else None


def _action(event: dict, request_id: str):
    """A synchronous action of the model's kind; an adapted one (OpenAI, TEI) runs the action it adapts."""
    action = KIND.action(ROUTES[_key(event)])
    if action.adapter is not None:
        ours, keep = adapt_event(action.adapter, event, CONFIG, MODEL.name, action.example)
        # The other API's answer is JSON whatever its client accepts: never the image bytes.
        return action.adapter.reply(_run(KIND.action(action.adapter.base), ours, request_id, negotiate=False), keep)
    return _run(action, event, request_id)


def _run(action, event: dict, request_id: str, negotiate: bool = True):
    if action.finish is None:  # images: stored and answered with presigned URLs, or the image itself when asked
        media_type = images.accepted_image_type(event) if negotiate else None
        if media_type is not None:
            data, seed = images.image_answer(event, CONFIG, ENDPOINT, media_type)
            return Binary(data, media_type, {"X-Seed": str(seed)})
        return images.generate_images(event, CONFIG, ENDPOINT, STORE, request_id=request_id)
    return text.run(action.prepare(event, CONFIG), ENDPOINT, action.finish, request_id)


def _endpoint(event: dict, request_id: str) -> dict:
    info = next((m for m in CATALOG if m.name == MODEL.name), MODEL)
    return info.describe(REGION)


def _catalog(event: dict, request_id: str) -> dict:
    return {"endpoints": [m.describe(REGION) for m in CATALOG]}


def _openai_models(event: dict, request_id: str) -> dict:
    """GET /v1/models: every model with OpenAI routes; GET /models/<name>/v1/models: this one."""
    listed = routes.openai_models(CATALOG) if _key(event)[0] == routes.MODELS_PATH else [MODEL]
    return openai.models_list([(m.name, m.kind) for m in listed])


def _submit(event: dict, request_id: str) -> dict:
    """Any action of an async model: validate as the synchronous route does, then queue it (202)."""
    action = KIND.action(ROUTES[_key(event)])
    body = jobs.submit(action.prepare(event, CONFIG), model=MODEL.name, action=action.name, endpoint=ENDPOINT,
                       store=JOBS, event=event, request_id=request_id)
    _RECORD.get()["job"] = "submitted"
    return body


def _job_action(record: jobs.JobRecord):
    """The action a job ran, from the kind of the model that ran it (GET /jobs/<id> reads every model's jobs)."""
    model = next((m for m in CATALOG if m.name == record.model), MODEL)
    return kind(model.kind).action(record.action)


def _finish(record: jobs.JobRecord, answer: bytes, load_input) -> dict:
    action = _job_action(record)
    if action.finish is None:
        if not KIND.stores_images:  # cannot happen: routes.job_reader picks an image model when one is async
            raise ApiError(500, "misconfigured", "this function cannot store images (deployment error)")
        return images.store_job_images(record, answer, load_input, CONFIG, STORE)
    return action.finish(answer, record.meta)


def _respond(record: jobs.JobRecord, result: dict) -> dict:
    if _job_action(record).finish is None:
        return images.job_images_body(record, result, CONFIG, STORE)
    return {**result, "request_id": record.request_id}


def _job(event: dict, request_id: str) -> dict:
    path = event.get("resource") or ""
    return jobs.status(jobs.job_id_from(event), store=JOBS, finish=_finish, respond=_respond,
                       model=None if path == routes.JOB_PATH else MODEL.name,
                       finished=lambda state: _RECORD.get().update(job=state))


# The routes' own actions; every other action is the kind's (synchronous, or queued as a job when hosted async).
PIPELINES = {"endpoint": _endpoint, "catalog": _catalog, "job": _job, routes.OPENAI_MODELS: _openai_models}
KIND_ACTIONS = {a.name: a for a in KIND.actions}
# (path, method) -> action, for the routes this model serves; every route of the API, for what none serves.
API_ROUTES = routes.api_routes(CATALOG)
ROUTES = {(r.path, r.method): r.action for r in API_ROUTES if r.model == MODEL.name}


def _key(event: dict) -> tuple[str, str]:
    return event.get("resource") or event.get("path") or "", (event.get("httpMethod") or "").upper()


def _route(event: dict):
    """(pipeline, status of its success) for the event's route, or ApiError 404/405 (as the deployed fallback
    answers a path or method no route has: this function is reached only through its own routes)."""
    path, method = _key(event)
    action = ROUTES.get((path, method))
    if action is not None:
        if action in PIPELINES:
            return PIPELINES[action], 200
        return (_submit, 202) if ASYNC else (_action, 200)
    if any((r.path, r.method) == (path, method) for r in API_ROUTES):  # never deployed: each route has its function
        raise ApiError(404, "not_found", f"{method} {path} is another model's route, not {MODEL.name}'s")
    raise routes.unrouted(API_ROUTES, event.get("path") or path, method)


def new_record(event: dict, request_id: str) -> dict:
    """The request's log record, as it begins. Never the body, the query string or a URL: prompts and presigned
    URLs stay out of the logs."""
    return {"request_id": request_id, "model": MODEL.name, "method": event.get("httpMethod"),
            "route": event.get("resource") or event.get("path") or "(none)", "action": ROUTES.get(_key(event))}


def write_record(record: dict, status: int, started: float) -> None:
    """The request's one JSON log line (Lambda's JSON log format puts `extra` at the line's root), its metrics
    included: written when the answer is complete."""
    model_ms = ENDPOINT.take_latency_ms()
    if model_ms is not None:
        record["model_latency_ms"] = model_ms
    record["status"] = status
    record["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    record = {k: v for k, v in record.items() if v is not None}
    log.log(logging.ERROR if record["status"] >= 500 else logging.INFO,
            "%s %s %s in %.0f ms", record.get("method", "-"), record["route"], record["status"], record["latency_ms"],
            extra={**record, **telemetry.emf(record, int(time.time() * 1000), NAMESPACE)})


def request_id_of(context) -> str:
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


def handler(event: dict, context) -> dict:
    started = time.monotonic()
    request_id = request_id_of(context)
    record = new_record(event, request_id)
    token = _RECORD.set(record)
    ENDPOINT.take_latency_ms()  # nothing of an earlier request on this thread
    action = KIND_ACTIONS.get(record["action"])  # None for the routes' own (endpoint, catalog, job, models)
    try:
        pipeline, status = _route(event)
        body = pipeline(event, request_id)
        if isinstance(body, Binary):  # the image itself (Accept: image/png)
            response = binary_response(status, body, {"X-Request-Id": request_id})
            record["images"] = 1
        else:
            response = json_response(status, body, {"X-Request-Id": request_id})
            made = None if not isinstance(body, dict) else body.get("images") or (
                body.get("data") if KIND.stores_images and action is not None and action.adapter else None)
            if isinstance(made, list) and (record["action"] != "job" or record.get("job") == "completed"):
                record["images"] = len(made)  # made now, not shown again by a later poll
    except ApiError as error:
        response = error_response(error, request_id, action.adapter.errors if action and action.adapter else "api")
        record["error_code"] = error.code
        if error.__cause__ is not None:
            record["cause"] = type(error.__cause__).__name__
    except Exception:  # a bug, not a user error: log the traceback, tell the caller nothing internal
        log.exception("unhandled error in request %s", request_id)
        response = error_response(ApiError(500, "internal_error", "unexpected error; quote the X-Request-Id "
                                                                   "header when reporting it"), request_id)
        record["error_code"] = "internal_error"
    finally:
        _RECORD.reset(token)
    response["headers"].update(cors.response_headers(CORS_ORIGINS, cors.request_origin(event.get("headers"))))
    write_record(record, response["statusCode"], started)
    return response
