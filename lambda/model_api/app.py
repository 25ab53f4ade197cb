"""One model's API as an object: its routes and pipelines over its endpoint and storage, built from its function's
environment (the Lambda's, or one local mode gives it) and its clients. lambda/handler.py builds one per container and
hands Lambda its `handle`; lambda/stream_handler.py hands it `stream` (model_api.streamed); local mode builds one per
model, each from its own environment, in one process; the tests build them with fake clients.

Environment: MODEL_NAME, MODEL_KIND, ENDPOINT_NAME, MODEL_CATALOG (all models, for routing and GET /endpoint),
BUCKET_NAME and SIGNER_ROLE_ARN (kinds that store images), the kind's config (model_api.kinds: ImageConfig or
model_api.text.TextConfig); MODEL_HOSTING=async with JOB_TIMEOUT_SECONDS and JOB_TTL_SECONDS for a model hosted
async (BUCKET_NAME holds its jobs); INFERENCE_COMPONENT for a shared model (the component it invokes on the shared
endpoint); METRICS_NAMESPACE, CORS_ORIGINS; STREAM_SECONDS for a streaming model.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from typing import Any, Callable, Iterator, Mapping, Optional

from model_api import aws, cors, jobs, routes, telemetry, text
from model_api.actions import adapt_event
from model_api.adapters import openai
from model_api.errors import ApiError, internal_error
from model_api.http import Binary, binary_response, error_response, json_response
from model_api.kinds import kind
from model_api.validation import shown

log = logging.getLogger("model_api")


def configure_logging(env: Mapping[str, str]) -> None:
    """The function's application log level (Lambda sets AWS_LAMBDA_LOG_LEVEL from the stack's log_level: INFO or
    DEBUG; the request line, which carries the metrics, is INFO). Third-party loggers never go below WARNING: botocore's
    DEBUG lines carry request bodies (prompts) and signed URLs, which are never logged."""
    level = env.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    log.setLevel({"TRACE": "DEBUG"}.get(level, level))
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)


def request_id_of(context) -> str:
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


class ModelApp:
    """One model's routes, pipelines and request log. env: its function's environment; runtime: a SageMaker runtime
    client (default: made from env, model_api.aws); s3: an S3 client for the jobs of an async text model (image models
    build their own in the background)."""

    def __init__(self, env: Mapping[str, str], runtime: Any = None, s3: Any = None):
        env = dict(env)
        # Every function's environment names its model and kind (deployment.settings.function_environment).
        self.model = routes.ModelInfo(name=env["MODEL_NAME"], kind=env["MODEL_KIND"], endpoint_name=env["ENDPOINT_NAME"])
        self.kind = kind(self.model.kind)
        self.catalog = routes.catalog_from_env(env) or [self.model]
        self.region = env.get("AWS_REGION", "us-east-1")
        self.is_async = env.get("MODEL_HOSTING") == "async"
        self.namespace = env.get("METRICS_NAMESPACE", telemetry.NAMESPACE)
        # Web origins a browser may call from (cors_origins); empty: no CORS header on any answer.
        self.cors_origins = cors.parse_origins(env.get("CORS_ORIGINS"))
        # The longest an answer may stream (stream_timeout_seconds; lambda/stream_handler.py).
        self.stream_seconds = float(env.get("STREAM_SECONDS", "300"))
        self.endpoint = aws.SageMakerEndpoint(
            runtime if runtime is not None else aws.sagemaker_runtime_client(env), self.model.endpoint_name,
            inputs_only_fail_400=env.get("MODEL_PROTOCOL") == "pipeline",
            job_timeout_seconds=int(env.get("JOB_TIMEOUT_SECONDS", "900")),
            job_ttl_seconds=int(env.get("JOB_TTL_SECONDS", "21600")),
            component=env.get("INFERENCE_COMPONENT") or None)
        self.config = self.kind.config_from_env(env)
        self.store: Optional[aws.S3ImageStore] = None
        if self.kind.stores_images:
            env["SIGNER_ROLE_ARN"]  # required: a deployment error shows at init, not at the first request
            # The S3 clients are off the critical path: built in the background, one after the other, while the
            # first request waits on the model (a cold start's first model call needs only the runtime client). URLs
            # are signed as the read-only signer role, whose sessions outlive every URL (model_api.aws.UrlSigner).
            writer = aws.Deferred(lambda: aws.s3_client(env))
            self.store = aws.S3ImageStore(writer, env["BUCKET_NAME"], signing=aws.Deferred(
                lambda: aws.url_signing(env, self.config.url_ttl_seconds), after=writer))
        self.jobs: Optional[aws.S3JobStore] = None
        if self.is_async:
            self.jobs = aws.S3JobStore(self.store._client if self.store is not None else (s3 or aws.s3_client(env)),
                                       env["BUCKET_NAME"])
        # The request being handled: its log record, which the pipelines add to (jobs submitted and finished).
        self._record: contextvars.ContextVar[dict] = contextvars.ContextVar("record")
        # The routes' own actions; every other action is the kind's (synchronous, or queued as a job when async).
        self.pipelines: dict[str, Callable] = {"endpoint": self._endpoint, "catalog": self._catalog, "job": self._job,
                                               routes.OPENAI_MODELS: self._openai_models,
                                               routes.OPENAI_MODEL: self._openai_model}
        self.kind_actions = {a.name: a for a in self.kind.actions}
        # (path, method) -> action, for the routes this model serves; every route of the API, for what none serves.
        self.api_routes = routes.api_routes(self.catalog)
        self.routes = {(r.path, r.method): r.action for r in self.api_routes if r.model == self.model.name}

    # ------------------------------------------------------------------------------------------------ pipelines

    def action(self, event: dict, request_id: str):
        """A synchronous action of the model's kind; an adapted one (OpenAI, TEI) runs the action it adapts."""
        action = self.kind.action(self.routes[key_of(event)])
        if action.adapter is not None:
            ours, keep = adapt_event(action.adapter, event, self.config, self.model.name, action.example)
            # The other API's answer is JSON whatever its client accepts: never the image bytes.
            return action.adapter.reply(self._run(self.kind.action(action.adapter.base), ours, request_id,
                                                  negotiate=False), keep)
        return self._run(action, event, request_id)

    def _run(self, action, event: dict, request_id: str, negotiate: bool = True):
        if action.run is not None:  # an action that runs its own way (images: stored and signed)
            return action.run(event, self, request_id, negotiate)
        return text.run(action.prepare(event, self.config), self.endpoint, action.finish, request_id)

    @property
    def image_store(self) -> aws.S3ImageStore:
        """What model_api.actions.Context promises the actions' own hooks."""
        if self.store is None:  # a kind that stores images always has one (__init__)
            raise ApiError(500, "misconfigured", "this function cannot store images (deployment error)")
        return self.store

    def _job_store(self) -> aws.S3JobStore:
        if self.jobs is None:  # an async model always has one (__init__); GET /jobs is routed to async models only
            raise ApiError(500, "misconfigured", "this function reads no jobs (deployment error)")
        return self.jobs

    def _endpoint(self, event: dict, request_id: str) -> dict:
        info = next((m for m in self.catalog if m.name == self.model.name), self.model)
        return info.describe(self.region)

    def _catalog(self, event: dict, request_id: str) -> dict:
        return {"endpoints": [m.describe(self.region) for m in self.catalog]}

    def _openai_models(self, event: dict, request_id: str) -> dict:
        """GET /v1/models: every model with OpenAI routes; GET /models/<name>/v1/models: this one."""
        listed = routes.openai_models(self.catalog) if key_of(event)[0].startswith(routes.MODELS_PATH) \
            else [self.model]
        return openai.models_list([(m.name, m.kind) for m in listed])

    def _openai_model(self, event: dict, request_id: str) -> dict:
        """GET /v1/models/{model_id} (the openai SDK's models.retrieve): the model's entry of the list, or 404."""
        listed = self._openai_models(event, request_id)["data"]
        wanted = (event.get("pathParameters") or {}).get("model_id") or ""
        found = next((entry for entry in listed if entry["id"] == wanted), None)
        if found is None:
            names = ", ".join(entry["id"] for entry in listed)
            raise ApiError(404, "model_not_found", f"no model {shown(wanted[:80])} here; the models are {names} "
                                                   "(GET /v1/models)")
        return found

    def _submit(self, event: dict, request_id: str) -> dict:
        """Any action of an async model: validate as the synchronous route does, then queue it (202)."""
        action = self.kind.action(self.routes[key_of(event)])
        body = jobs.submit(action.prepare(event, self.config), model=self.model.name, action=action.name,
                           endpoint=self.endpoint, store=self._job_store(), event=event, request_id=request_id)
        self._record.get()["job"] = "submitted"
        return body

    def _job_action(self, record: jobs.JobRecord):
        """The action a job ran, from the kind of the model that ran it (GET /jobs/<id> reads every model's jobs). A
        job of a model the deployment no longer serves (its jobs outlive a redeploy until they expire) is gone."""
        model = next((m for m in self.catalog if m.name == record.model), None)
        action = next((a for a in kind(model.kind).actions if a.name == record.action), None) if model else None
        if action is None:
            raise ApiError(404, "job_not_found", jobs.NOT_FOUND)
        return action

    def _finish(self, record: jobs.JobRecord, answer: bytes, load_input) -> dict:
        action = self._job_action(record)
        if action.finish_job is not None:  # routes.job_reader picks an image model's function when one is async
            return action.finish_job(record, answer, load_input, self)
        return action.finish(answer, record.meta)

    def _respond(self, record: jobs.JobRecord, result: dict) -> dict:
        action = self._job_action(record)
        if action.job_body is not None:
            return action.job_body(record, result, self)
        return {**result, "request_id": record.request_id}

    def _job(self, event: dict, request_id: str) -> dict:
        path = event.get("resource") or ""
        return jobs.status(jobs.job_id_from(event), store=self._job_store(), finish=self._finish, respond=self._respond,
                           model=None if path == routes.JOB_PATH else self.model.name,
                           finished=lambda state: self._record.get().update(job=state))

    def route(self, event: dict) -> tuple[Callable, int]:
        """(pipeline, status of its success) for the event's route, or ApiError 404/405 (as the deployed fallback
        answers a path or method no route has: this function is reached only through its own routes)."""
        path, method = key_of(event)
        action = self.routes.get((path, method))
        if action is not None:
            if action in self.pipelines:
                return self.pipelines[action], 200
            return (self._submit, 202) if self.is_async else (self.action, 200)
        if any((r.path, r.method) == (path, method) for r in self.api_routes):  # each route has its own function
            raise ApiError(404, "not_found", f"{method} {path} is another model's route, not {self.model.name}'s")
        raise routes.unrouted(self.api_routes, event.get("path") or path, method)

    # ------------------------------------------------------------------------------------------------ requests

    def error_style(self, action_name: Optional[str]) -> str:
        """The shape of a route's errors: its adapter's (OpenAI's on /v1), OpenAI's on the model list, else ours."""
        action = self.kind_actions.get(action_name or "")
        if action is not None and action.adapter is not None:
            return action.adapter.errors
        return "openai" if action_name in (routes.OPENAI_MODELS, routes.OPENAI_MODEL) else "api"

    def new_record(self, event: dict, request_id: str) -> dict:
        """The request's log record, as it begins. Never the body, the query string or a URL: prompts and presigned
        URLs stay out of the logs."""
        return {"request_id": request_id, "model": self.model.name, "method": event.get("httpMethod"),
                "route": event.get("resource") or event.get("path") or "(none)",
                "action": self.routes.get(key_of(event))}

    def write_record(self, record: dict, status: int, started: float) -> None:
        """The request's one JSON log line (Lambda's JSON log format puts `extra` at the line's root), its metrics
        included: written when the answer is complete."""
        model_ms = self.endpoint.take_latency_ms()
        if model_ms is not None:
            record["model_latency_ms"] = model_ms
        record["status"] = status
        record["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        record = {k: v for k, v in record.items() if v is not None}
        log.log(logging.ERROR if record["status"] >= 500 else logging.INFO,
                "%s %s %s in %.0f ms", record.get("method", "-"), record["route"], record["status"],
                record["latency_ms"], extra={**record, **telemetry.emf(record, int(time.time() * 1000),
                                                                       self.namespace)})

    def handle(self, event: dict, context) -> dict:
        """A proxy event -> its proxy response (API Gateway's REST proxy integration, buffered)."""
        started = time.monotonic()
        request_id = request_id_of(context)
        record = self.new_record(event, request_id)
        token = self._record.set(record)
        self.endpoint.take_latency_ms()  # nothing of an earlier request on this thread
        action = self.kind_actions.get(record["action"])  # None for the routes' own (endpoint, catalog, job, models)
        try:
            pipeline, status = self.route(event)
            body = pipeline(event, request_id)
            if isinstance(body, Binary):  # the image itself (Accept: image/png)
                response = binary_response(status, body, {"X-Request-Id": request_id})
                record["images"] = 1
            else:
                response = json_response(status, body, {"X-Request-Id": request_id})
                made = self.kind.made_images(body, action)
                if made is not None and (record["action"] != "job" or record.get("job") == "completed"):
                    record["images"] = made  # made now, not shown again by a later poll
        except ApiError as error:
            response = error_response(error, request_id, self.error_style(record["action"]))
            record["error_code"] = error.code
            if error.__cause__ is not None:
                record["cause"] = type(error.__cause__).__name__
        except Exception:  # a bug, not a user error: log the traceback, tell the caller nothing internal
            log.exception("unhandled error in request %s", request_id)
            response = error_response(internal_error(), request_id)
            record["error_code"] = "internal_error"
        finally:
            self._record.reset(token)
        response["headers"].update(cors.response_headers(self.cors_origins,
                                                         cors.request_origin(event.get("headers"))))
        self.write_record(record, response["statusCode"], started)
        return response

    def stream(self, event: dict, context) -> Iterator[bytes]:
        """A proxy event -> its streamed answer (head, then body: model_api.streamed), for a streaming model."""
        from model_api import streamed

        return streamed.answer(self, event, context)


def key_of(event: dict) -> tuple[str, str]:
    """(route path, method) of a proxy event."""
    return event.get("resource") or event.get("path") or "", (event.get("httpMethod") or "").upper()
