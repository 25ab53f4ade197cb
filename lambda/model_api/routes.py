"""Which paths the API has and which model serves each: one definition for the gateway (CDK), the handler, local
mode and the smoke test.

Every model answers at /models/<name> (its main action) and /models/<name>/endpoint (its endpoint info); a chat
model also embeds at /models/<name>/embeddings. The first model offering an action also answers at the action's
short path (/images, /generate, /embeddings, /chat), and the first model of the deployment answers GET /endpoint
with the whole catalog.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Sequence

from model_api.schema import IMAGES_PATH

KINDS = ("text-to-image", "text-generation", "embeddings", "chat")
# The actions each kind serves; the first is its main action.
ACTIONS = {"text-to-image": ("images",), "text-generation": ("generate",), "embeddings": ("embeddings",),
           "chat": ("chat", "embeddings")}
SHORT_PATHS = {"images": IMAGES_PATH, "generate": "/generate", "embeddings": "/embeddings", "chat": "/chat"}
CATALOG_PATH = "/endpoint"


@dataclass(frozen=True)
class ModelInfo:
    """What the API tells about a model (GET /endpoint) and what routing needs."""

    name: str
    kind: str
    endpoint_name: str
    instance_type: Optional[str] = None  # None for an endpoint the stack did not create

    def runtime_url(self, region: str) -> str:
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"https://runtime.sagemaker.{region}.{suffix}/endpoints/{self.endpoint_name}/invocations"

    def describe(self, region: str) -> dict:
        return {"name": self.name, "kind": self.kind, "endpoint_name": self.endpoint_name,
                "runtime_url": self.runtime_url(region), "instance_type": self.instance_type,
                "path": f"/models/{self.name}"}


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    model: str
    action: str  # images | generate | embeddings | chat | endpoint | catalog


def catalog_to_json(models: Sequence[ModelInfo]) -> str:
    return json.dumps([asdict(m) for m in models], separators=(",", ":"))


def catalog_from_env(env: Mapping[str, str]) -> list[ModelInfo]:
    return [ModelInfo(**m) for m in json.loads(env.get("MODEL_CATALOG") or "[]")]


def default_models(models: Sequence[ModelInfo]) -> dict[str, str]:
    """action -> name of the model answering at the action's short path. For embeddings, a model of kind
    embeddings wins over a chat model that can also embed."""
    defaults: dict[str, str] = {}
    for model in sorted(models, key=lambda m: m.kind == "chat"):  # stable: keeps the deployment's order
        for action in ACTIONS[model.kind]:
            defaults.setdefault(action, model.name)
    return defaults


def routes(models: Sequence[ModelInfo]) -> list[Route]:
    """Every route of a deployment, in a stable order."""
    out: list[Route] = []
    for model in models:
        main, *others = ACTIONS[model.kind]
        methods = ("GET", "POST") if main == "images" else ("POST",)
        out += [Route(f"/models/{model.name}", m, model.name, main) for m in methods]
        out += [Route(f"/models/{model.name}/{action}", "POST", model.name, action) for action in others]
        out.append(Route(f"/models/{model.name}/endpoint", "GET", model.name, "endpoint"))
    for action, name in default_models(models).items():
        methods = ("GET", "POST") if action == "images" else ("POST",)
        out += [Route(SHORT_PATHS[action], m, name, action) for m in methods]
    if models:
        out.append(Route(CATALOG_PATH, "GET", models[0].name, "catalog"))
    return out


# A request body that works, per action: the API's hints, the stack's curl example and local mode's banner.
EXAMPLE_BODIES = {
    "images": '{"prompt": "a cyborg tiger"}',
    "generate": '{"inputs": "Once upon a time"}',
    "embeddings": '{"inputs": ["a cyborg tiger", "a robot cat"]}',
    "chat": '{"messages": [{"role": "user", "content": "Hello!"}]}',
}
