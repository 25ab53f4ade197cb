"""What a model kind is: the actions it serves and what the deployment needs to know about it.

Each kind is one module in this package that defines KIND; model_api.kinds registers it. Everything that differs by
kind is read from there: routes (model_api.routes), the handler's dispatch, the catalog's protocol checks and
scaling targets (stacks/), local mode's banner and the smoke test (ops/smoke.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from model_api.actions import Action, Adapter, SmokeCheck  # noqa: F401 (the kinds' modules import them here)


@dataclass(frozen=True)
class Kind:
    name: str
    actions: tuple[Action, ...]  # the first is the model's main action (POST /models/<model>)
    # The request formats the Lambda can speak to models of this kind; default_protocol picks one for a model from
    # its source, container and code (a deployment.model_catalog.ModelSpec), unless the model sets protocol.
    protocols: tuple[str, ...]
    default_protocol: Callable[[Any], str]
    # Autoscaling defaults (deployment/hosting.py): invocations per instance (or copy) per minute for realtime and
    # shared hosting, queued jobs per instance for async hosting. Each from what one request of the kind costs.
    target_invocations: float
    target_backlog: float
    # Answers are images stored in the bucket and returned as presigned URLs (the function gets the bucket and the
    # URL signer role).
    stores_images: bool = False
    # Its functions' config: a class with from_env(env) (None: model_api.text.TextConfig).
    config_type: Any = None
    # (an answer's body, the action or None) -> how many images it made now (the Images metric), or None.
    made_images: Callable[[Any, Optional[Action]], Optional[int]] = lambda body, action: None
    # (settings, model, seconds one request may take) -> what our inference code for the kind reads from the
    # container's environment (its bounds), added by the stack (stacks/model_api_stack.py) to every model of the kind.
    container_environment: Optional[Callable[[Any, Any, int], dict]] = None
    # model -> the offline stand-in local mode runs for it (local/tiny_models.STAND_INS: "causal-lm" by default).
    local_stand_in: Optional[Callable[[Any], str]] = None

    @property
    def can_stream(self) -> bool:
        """Some answer of the kind streams: tokens (an action with a stream source) or progress."""
        return any(a.stream_source is not None or a.progress is not None for a in self.actions)

    def action(self, name: str) -> Action:
        return next(a for a in self.actions if a.name == name)

    def config_from_env(self, env: Mapping[str, str]):
        """The pipeline config its function reads from its environment."""
        if self.config_type is not None:
            return self.config_type.from_env(env)
        from model_api.text import TextConfig
        return TextConfig.from_env(env)
