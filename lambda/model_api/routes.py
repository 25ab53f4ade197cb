"""Which paths the API has and which model serves each: one definition for the gateway (CDK), the handler, local
mode and the smoke test.

Every model answers at /models/<name> (its main action) and /models/<name>/endpoint (its endpoint info); a chat
model also embeds at /models/<name>/embeddings. The first model offering an action also answers at the action's
short path (/images, /generate, /embeddings, /chat: model_api.kinds), and the first model of the deployment answers GET /endpoint
with the whole catalog. Adapted actions (model_api.adapters) route the same way: /v1/embeddings and
/models/<name>/v1/embeddings, /embed; GET /v1/models (and /models/<name>/v1/models) lists the models with OpenAI
routes. An async model serves no adapted route.

A model hosted async answers every action with 202 and a job (also at POST /models/<name>/jobs, its main action),
and GET /models/<name>/jobs/{job_id} reads a job. GET /jobs/{job_id} reads any job of the deployment: it is served
by one async model's function (an image model's if there is one, as only those can store and sign images), which
finishes text jobs by the same pure code.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Sequence

from model_api.adapters.openai import PREFIX as OPENAI_PREFIX
from model_api.errors import ApiError
from model_api.kinds import KINDS, Action, actions

CATALOG_PATH = "/endpoint"
MODELS_PATH = "/v1/models"  # OpenAI's model list (model_api.adapters.openai.models_list)
OPENAPI_PATH = "/openapi.json"  # the API's own description, answered by the gateway itself (no model, no key)


@dataclass(frozen=True)
class ModelInfo:
    """What the API tells about a model (GET /endpoint) and what routing needs."""

    name: str
    kind: str
    endpoint_name: str
    instance_type: Optional[str] = None  # None for an endpoint the stack did not create
    hosting: str = "realtime"  # realtime | serverless | async | shared (deployment.hosting)
    component: Optional[str] = None  # shared: the inference component on endpoint_name that serves it
    streaming: bool = False  # its answers may stream (lambda/stream_handler.py): stream-only routes exist

    @property
    def is_async(self) -> bool:
        return self.hosting == "async"

    def runtime_url(self, region: str) -> str:
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"https://runtime.sagemaker.{region}.{suffix}/endpoints/{self.endpoint_name}/invocations"

    def describe(self, region: str) -> dict:
        return {"name": self.name, "kind": self.kind, "endpoint_name": self.endpoint_name,
                "runtime_url": self.runtime_url(region), "instance_type": self.instance_type,
                "hosting": self.hosting, "inference_component": self.component, "streaming": self.streaming,
                "path": f"/models/{self.name}"}


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    model: str
    action: str  # an action of the model's kind (model_api.kinds), or endpoint | catalog | job


def catalog_to_json(models: Sequence[ModelInfo]) -> str:
    """Compact: every Lambda carries it in its 4 KB environment (no component unless the model has one, no
    streaming unless it streams)."""
    return json.dumps([{k: v for k, v in asdict(m).items() if (k != "component" or v is not None)
                        and (k != "streaming" or v)} for m in models], separators=(",", ":"))


def catalog_from_env(env: Mapping[str, str]) -> list[ModelInfo]:
    return [ModelInfo(**m) for m in json.loads(env.get("MODEL_CATALOG") or "[]")]


def model_actions(model: ModelInfo) -> tuple[Action, ...]:
    """The actions a model serves: its kind's, but no adapted ones (OpenAI, TEI) when it is hosted async, as their
    clients expect the answer, not a job, and stream-only ones (TGI's /generate_stream) only when it streams."""
    return tuple(a for a in KINDS[model.kind].actions if not (model.is_async and a.adapter is not None)
                 and (model.streaming or not a.stream_only))


def default_models(models: Sequence[ModelInfo]) -> dict[str, str]:
    """action -> name of the model answering at the action's short path. For embeddings, a model of kind
    embeddings wins over a chat model that can also embed."""
    defaults: dict[str, str] = {}
    for model in sorted(models, key=lambda m: m.kind == "chat"):  # stable: keeps the deployment's order
        for action in model_actions(model):
            defaults.setdefault(action.name, model.name)
    return defaults


OPENAI_MODELS = "v1-models"  # the action of GET /v1/models and /models/<name>/v1/models
OPENAI_MODEL = "v1-model"  # GET /v1/models/{model_id}: one of them (the openai SDK's models.retrieve)
MODEL_ID = "/{model_id}"


def is_openai(action: str) -> bool:
    """An action in OpenAI's shape (its body names the model it asks for)."""
    return action.startswith(OPENAI_PREFIX)


def openai_models(models: Sequence[ModelInfo]) -> list[ModelInfo]:
    """The models with OpenAI routes (GET /v1/models lists them)."""
    return [m for m in models if any(is_openai(a.name) for a in model_actions(m))]


JOB_PATH = "/jobs/{job_id}"


def job_reader(models: Sequence[ModelInfo]) -> Optional[str]:
    """The model whose function serves GET /jobs/{job_id}: the first async model that stores images (only its function
    can store and sign them), else the first async one."""
    hosted = [m for m in models if m.is_async]
    return next((m.name for m in hosted if KINDS[m.kind].stores_images), hosted[0].name if hosted else None)


def routes(models: Sequence[ModelInfo]) -> list[Route]:
    """Every route of a deployment, in a stable order."""
    out: list[Route] = []
    openai = openai_models(models)
    for model in models:
        main, *others = model_actions(model)
        out += [Route(f"/models/{model.name}", m, model.name, main.name) for m in main.methods]
        out += [Route(f"/models/{model.name}/{action.name}", "POST", model.name, action.name) for action in others]
        if model in openai:
            out.append(Route(f"/models/{model.name}{MODELS_PATH}", "GET", model.name, OPENAI_MODELS))
            out.append(Route(f"/models/{model.name}{MODELS_PATH}{MODEL_ID}", "GET", model.name, OPENAI_MODEL))
        out.append(Route(f"/models/{model.name}/endpoint", "GET", model.name, "endpoint"))
        if model.is_async:
            out.append(Route(f"/models/{model.name}/jobs", "POST", model.name, main.name))
            out.append(Route(f"/models/{model.name}{JOB_PATH}", "GET", model.name, "job"))
    by_name = actions()
    for action, name in default_models(models).items():
        out += [Route(by_name[action].short_path, m, name, action) for m in by_name[action].methods]
    if models:
        out.append(Route(CATALOG_PATH, "GET", models[0].name, "catalog"))
    if openai:
        out.append(Route(MODELS_PATH, "GET", openai[0].name, OPENAI_MODELS))
        out.append(Route(MODELS_PATH + MODEL_ID, "GET", openai[0].name, OPENAI_MODEL))
    reader = job_reader(models)
    if reader is not None:
        out.append(Route(JOB_PATH, "GET", reader, "job"))
    return out


def api_routes(models: Sequence[ModelInfo]) -> list[Route]:
    """Every route the API answers: the models' (routes) and GET /openapi.json, which the gateway serves."""
    return [*routes(models), Route(OPENAPI_PATH, "GET", "", "openapi")]


def main_action(kind: str) -> Action:
    """The action a model of this kind serves at /models/<name> (and the stack's curl example shows)."""
    return KINDS[kind].actions[0]


def route_path(routes: Sequence[Route], path: str) -> Optional[str]:
    """The route path a request path belongs to (literal paths as they are; a {parameter} one path segment, as API
    Gateway matches it), or None when no route has it."""
    path = path.rstrip("/") or "/"
    for template in dict.fromkeys(r.path for r in routes):
        if template == path or ("{" in template and re.fullmatch(
                re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)), path)):
            return template
    return None


def unrouted(routes: Sequence[Route], path: str, method: str) -> ApiError:
    """What a request no route serves gets: 405 with the methods its path has (also in Allow), or 404 naming the
    routes there are. Served by the deployed fallback function (lambda/unrouted.py) and local mode alike."""
    sent = method or ""
    method = sent.upper() or "(no method)"
    template = route_path(routes, path)
    if template is not None:
        allowed = sorted({r.method for r in routes if r.path == template})
        if sent != method and method in allowed:
            # API Gateway matches methods as sent (RFC 9110: a method is case-sensitive): "get" is not GET.
            return ApiError(405, "method_not_allowed", f"methods are case-sensitive: {sent[:20]} is not {method}; "
                                                       f"{template} takes {' or '.join(allowed)}",
                            headers={"Allow": ", ".join(allowed)})
        return ApiError(405, "method_not_allowed", f"{sent[:20] or method} is not allowed on {template}; it takes "
                                                   f"{' or '.join(allowed)}", headers={"Allow": ", ".join(allowed)})
    shown = path if len(path) <= 100 else path[:97] + "..."
    listed = sorted({f"{r.method} {r.path}" for r in routes}, key=lambda text: (text.split(" ")[1], text))
    return ApiError(404, "not_found", f"no route {method[:20]} {shown}; this API has {', '.join(listed)} (GET "
                                      "/openapi.json describes each)")
