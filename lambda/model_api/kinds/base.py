"""What a model kind is: the actions it serves and what the deployment needs to know about it.

Each kind is one module in this package that defines KIND; model_api.kinds registers it. Everything that differs by
kind is read from there: routes (model_api.routes), the handler's dispatch, the catalog's protocol checks and
scaling targets (stacks/), local mode's banner and the smoke test (ops/smoke.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional

# (answer, fetch) -> "" when the smoke test's answer is right, else what is wrong; fetch(url) -> bytes.
SmokeCheck = Callable[[dict, Callable[[str], bytes]], str]


@dataclass(frozen=True)
class Action:
    """One thing a model does for a caller: a POST (or also a GET) at /<name> and /models/<model>[/<name>]."""

    name: str
    example: str  # a request body that works: error hints, the stack's curl example, local mode's banner
    # (event, config) -> ModelCall: parse, validate and bound the request; the same call for a request and a job.
    prepare: Callable
    # (answer, meta, content_type) -> the result's body. None for an action whose answer is images to store: the
    # handler runs those through the image store (model_api.kinds.text_to_image).
    finish: Optional[Callable]
    smoke: dict  # what the smoke test sends: small and quick
    smoke_invalid: dict  # a body the API must refuse with 400
    check: SmokeCheck
    methods: tuple[str, ...] = ("POST",)
    # config -> the JSON schema (draft 4) of the request body, bounded by the deployment's limits: what prepare
    # validates against, and what the OpenAPI document shows (model_api.openapi). None: not documented.
    schema: Optional[Callable[[object], dict]] = None
    # The JSON schema of a successful answer's body (documentation only).
    response: Optional[dict] = None

    @property
    def short_path(self) -> str:
        return f"/{self.name}"


@dataclass(frozen=True)
class Kind:
    name: str
    actions: tuple[Action, ...]  # the first is the model's main action (POST /models/<model>)
    # The request formats the Lambda can speak to models of this kind; default_protocol picks one for a model from
    # its source, container and code (a stacks.model_catalog.ModelSpec), unless the model sets protocol.
    protocols: tuple[str, ...]
    default_protocol: Callable[[object], str]
    # Autoscaling defaults (stacks/hosting.py): invocations per instance (or copy) per minute for realtime and
    # shared hosting, queued jobs per instance for async hosting. Each from what one request of the kind costs.
    target_invocations: float
    target_backlog: float
    # Answers are images stored in the bucket and returned as presigned URLs (the function gets the bucket and the
    # URL signer role; its config is the image config).
    stores_images: bool = False

    def action(self, name: str) -> Action:
        return next(a for a in self.actions if a.name == name)

    def config_from_env(self, env: Mapping[str, str]):
        """The pipeline config its function reads from its environment."""
        if self.stores_images:
            from model_api.kinds.text_to_image import ImageConfig
            return ImageConfig.from_env(env)
        from model_api.text import TextConfig
        return TextConfig.from_env(env)
