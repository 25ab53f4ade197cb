"""A request to the model, ready to send, and the endpoint that answers it: what every kind's pipeline shares."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterable, Optional, Protocol

JSON = "application/json"


@dataclass(frozen=True)
class ModelCall:
    """One request to the model, ready to send, and what turning its answer into the API's result needs."""

    body: bytes
    content_type: str
    accept: str
    meta: dict = field(default_factory=dict)  # small, JSON: counts, protocol (never the prompt: it is in the body)


class Endpoint(Protocol):
    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Send one request to the model; return (response body, its content type). Raises ApiError."""

    def invoke_stream(self, body: bytes, content_type: str, accept: str) -> Iterable[bytes]:
        """Send one request to a model that streams its answer; return its bytes as they come (an iterable with
        close()). Raises ApiError, before the first byte and while iterating."""


class Abandoned(Exception):
    """The caller went away before the answer was made: the rest of the work is not done (nothing is stored)."""


# Set by whoever runs a request's work apart from its caller (model_api.streamed's image progress stream): set once
# the caller has gone. Each thread has its own context, so it is set in the worker thread itself.
_ABANDONED: ContextVar[Optional[threading.Event]] = ContextVar("abandoned", default=None)


def abandon_with(event: threading.Event) -> None:
    """In the thread doing a request's work: `event`, once set, stops it at its next step (stop_if_abandoned)."""
    _ABANDONED.set(event)


def stop_if_abandoned() -> None:
    """Between the steps of a request's work (after the model, before storing): raise Abandoned if its caller has
    gone, so no image is stored for no one."""
    event = _ABANDONED.get()
    if event is not None and event.is_set():
        raise Abandoned()
