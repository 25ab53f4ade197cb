"""The model kinds, registered: one module per kind defines its KIND (model_api.kinds.base.Kind); add a new kind's
module to KIND_MODULES and nothing else needs to know about it."""

from __future__ import annotations

from model_api.kinds import chat, embeddings, text_generation, text_to_image
from model_api.kinds.base import Action, Kind

KIND_MODULES = (text_to_image, text_generation, embeddings, chat)
KINDS: dict[str, Kind] = {module.KIND.name: module.KIND for module in KIND_MODULES}


def kind(name: str) -> Kind:
    return KINDS[name]


def actions() -> dict[str, Action]:
    """Every action by name (an action several kinds serve, like embeddings, is one object)."""
    out: dict[str, Action] = {}
    for k in KINDS.values():
        for action in k.actions:
            out.setdefault(action.name, action)
    return out


__all__ = ["Action", "Kind", "KINDS", "KIND_MODULES", "actions", "kind"]
