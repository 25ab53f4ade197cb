"""Server-sent events (the text/event-stream format of the WHATWG HTML standard, "Server-sent events") both ways,
and the head of a streamed API Gateway answer.

- event(): one event as bytes: an optional `event:` line, one `data:` line of compact JSON (JSON never holds a raw
  line break, so one line always suffices), then the blank line that ends it. OpenAI's streams and TGI's are such
  events; OpenAI's end with `data: [DONE]` (DONE). U+2028, U+2029 and U+0085 are written as JSON escapes: the
  standard splits lines on CR and LF only, but clients that read a stream with Python's str.splitlines()
  (huggingface_hub's) split on those three as well, and would get half an event.
- Decoder: the events of a byte stream that arrives in arbitrary pieces (SageMaker's PayloadParts cut TGI's stream
  anywhere, even inside a UTF-8 character). Lines end with LF, CRLF or CR; `data:` lines of one event are joined
  with LF; comment lines (`:`) and other fields are skipped, as the standard's parsing rules say.
- prelude(): what a Lambda streaming to an API Gateway REST proxy integration writes first: a JSON object with the
  status and headers, then 8 NUL bytes; the body follows as raw bytes (API Gateway Developer Guide, "Set up a
  Lambda proxy integration with payload response streaming": "metadata JSON ... followed by a delimiter of 8 null
  bytes", and the metadata must be within the first 16 KB of the stream).
"""

from __future__ import annotations

import json
from typing import Iterator, Optional

CONTENT_TYPE = "text/event-stream"
# Characters that are line breaks to str.splitlines() but not to the SSE standard, and their JSON escapes.
_SPLITLINES_BREAKS = {ord("\u2028"): "\\u2028", ord("\u2029"): "\\u2029", ord("\u0085"): "\\u0085"}
DONE = b"data: [DONE]\n\n"
DELIMITER = b"\0" * 8
MAX_PRELUDE_BYTES = 16 * 1024
# Headers of every streamed answer: not cached, not transformed, and (for proxies such as nginx) not buffered.
STREAM_HEADERS = {"Content-Type": f"{CONTENT_TYPE}; charset=utf-8", "Cache-Control": "no-store, no-transform",
                  "X-Accel-Buffering": "no"}


def event(data, name: Optional[str] = None) -> bytes:
    """One event: data (JSON-able, written compact; a str is written as it is) under an optional event name."""
    if isinstance(data, str):
        text = data
        if any(ord(c) in _SPLITLINES_BREAKS for c in text):
            raise ValueError("an event's text data must not hold U+2028, U+2029 or U+0085")
    else:  # inside JSON those characters can only stand in strings, where their escapes mean the same
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SPLITLINES_BREAKS)
    if "\n" in text or "\r" in text:
        raise ValueError("an event's data must be one line")
    return (f"event: {name}\n" if name else "").encode() + b"data: " + text.encode("utf-8") + b"\n\n"


def comment(text: str = "") -> bytes:
    """A comment line: ignored by every client, it keeps an idle connection alive."""
    return b":" + text.encode("utf-8") + b"\n\n"


class Decoder:
    """Incremental event parsing: feed() bytes as they come, get each complete event as (name, data)."""

    def __init__(self):
        self._buffer = b""
        self._name: Optional[str] = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[Optional[str], str]]:
        self._buffer += chunk
        events: list[tuple[Optional[str], str]] = []
        while True:
            line, found = self._next_line()
            if not found:
                return events
            if line == "":
                if self._data:
                    events.append((self._name, "\n".join(self._data)))
                self._name, self._data = None, []
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    self._data.append(value)
                elif field == "event":
                    self._name = value

    def _next_line(self) -> tuple[str, bool]:
        for index, byte in enumerate(self._buffer):
            if byte in (10, 13):  # LF, CR
                if byte == 13 and index + 1 == len(self._buffer):
                    return "", False  # a CR at the very end may be the first half of CRLF: wait for more
                line, rest = self._buffer[:index], self._buffer[index + 1:]
                if byte == 13 and rest.startswith(b"\n"):
                    rest = rest[1:]
                self._buffer = rest
                return line.decode("utf-8", errors="replace"), True
        return "", False

    def pending(self) -> bool:
        """Bytes or data lines of an event that never ended (a stream cut short)."""
        return bool(self._buffer.strip() or self._data)


def events(chunks) -> Iterator[tuple[Optional[str], str]]:
    """Every event of an iterable of byte chunks."""
    decoder = Decoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)


def prelude(status: int, headers: dict) -> bytes:
    """The head of a streamed proxy answer (the status and headers API Gateway answers with), delimiter included."""
    head = json.dumps({"statusCode": status, "headers": headers}, separators=(",", ":")).encode("utf-8")
    if len(head) + len(DELIMITER) > MAX_PRELUDE_BYTES:
        raise ValueError(f"the answer's head is {len(head)} bytes; API Gateway reads at most {MAX_PRELUDE_BYTES}")
    return head + DELIMITER


def split_prelude(data: bytes) -> Optional[tuple[dict, bytes]]:
    """(the head, the body bytes after it) once data holds the delimiter; None while it does not yet. Raises
    ValueError for a head that is not a JSON object or that is not within the first 16 KB (what API Gateway then
    answers as an integration failure)."""
    index = data.find(DELIMITER)
    if index < 0:
        if len(data) > MAX_PRELUDE_BYTES:
            raise ValueError("no head within the first 16 KB of the stream")
        return None
    head = json.loads(data[:index])
    if not isinstance(head, dict) or not isinstance(head.get("statusCode"), int):
        raise ValueError("the head has no statusCode")
    return head, data[index + len(DELIMITER):]
