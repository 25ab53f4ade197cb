"""A request to the model, ready to send, and the endpoint that answers it: what every kind's pipeline shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

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
