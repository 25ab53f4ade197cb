"""What local mode's HTTP servers (the API stand-in and the SageMaker stand-in) refuse before any request logic runs,
on top of the standard library's server:

- a whole request (request line, headers and body) must arrive within the server's request_timeout: one deadline
  for the request, not one per read, so a client that sends a byte every few seconds is cut off like a silent one
  (a watchdog shuts the socket's reading side at the deadline; the answer is 408);
- a header line must be a field name, a colon and a value: whitespace between the name and the colon, a line folded
  onto the next (starting with whitespace) or a bare CR inside the line is a 400 (RFC 9112, section 5.1: "A server
  MUST reject, with a response status code of 400 (Bad Request), any received request message that contains
  whitespace between a header field name and colon"; section 2.2 on bare CR);
- at most max_connections connections are served at once: more are answered 503 with Retry-After at once, and
  closed;
- a Host header must name this machine's loopback (127.0.0.1, localhost, [::1], any port): a web page whose
  name was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name and is refused (400);
- a connection closed with a request still coming (a refusal before its body, a 503, a 408) lingers: the server
  stops writing, then reads and drops what is still in flight for up to LINGER_SECONDS, so the client reads the
  answer instead of a reset (closing a socket with unread data makes the kernel send RST, which can destroy the
  answer before the client reads it).

Each server answers a refusal in its own shape (refuse): the API's JSON error, the runtime's AWS error.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# field-name = token (RFC 9110, section 5.1), ":", the value, then CRLF (or LF: what the library accepts).
_HEADER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r?\n\Z")
_CONNECTION_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


def linger_close(sock) -> None:
    """Stop writing, read and drop what the client still sends (bounded in time and bytes), then close."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        dropped = 0
        while dropped < LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            dropped += len(data)
    except OSError:
        pass
    finally:
        sock.close()


def loopback_host(value: str) -> bool:
    """Whether a Host header names this machine's loopback (with or without a port)."""
    host = value.strip().lower()
    if host.startswith("["):
        host = host[:host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host in LOOPBACK_HOSTS


CONNECTION_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class GuardedServer(ThreadingHTTPServer):
    """A threading server that serves at most max_connections connections at once; handler: a GuardedHandler."""

    daemon_threads = True
    request_queue_size = 256
    busy_answer = b'{"error":{"code":"busy","message":"too many connections at once; retry in a second"}}'
    busy_headers = ""  # more header lines of the busy answer, each ending in CRLF

    def __init__(self, address, handler, request_timeout: float = 10.0, max_connections: int = 64):
        if not max_connections >= 1:
            raise ValueError("max_connections must be at least 1")
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            # Answered on a thread of its own: its linger must not hold up the accepting thread.
            threading.Thread(target=self._refuse_busy, args=(request,), daemon=True, name="busy").start()
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A client that went away (a caller that hung up on a stream, a pool dropping a kept-alive connection)
        is one quiet line, never a traceback; any other error one line too."""
        error = sys.exc_info()[1]
        if isinstance(error, CONNECTION_GONE):
            print(f"local: client {client_address[0]} went away ({type(error).__name__})", file=sys.stderr,
                  flush=True)
            return
        print(f"local: error serving {client_address[0]}: {error!r}", file=sys.stderr, flush=True)

    def _refuse_busy(self, request) -> None:
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "
                f"{len(self.busy_answer)}\r\nRetry-After: 1\r\n{self.busy_headers}Connection: close\r\n\r\n").encode()
        try:
            request.settimeout(1)
            request.sendall(head + self.busy_answer)
        except OSError:
            pass
        linger_close(request)

    def shutdown_request(self, request):
        """Close a connection, lingering while the client may still be sending (linger_close)."""
        linger_close(request)


class _RecordingReader:
    """The connection's read side: records the lines of each request's head (request line and headers), as the
    client sent them, for the checks the library does not make."""

    def __init__(self, raw):
        self.raw = raw
        self.lines: list[bytes] = []
        self.recording = False

    def readline(self, limit: int = -1) -> bytes:
        line = self.raw.readline(limit)
        if self.recording:
            self.lines.append(line)
            if line in (b"\r\n", b"\n", b""):
                self.recording = False
        return line

    def read(self, size: int = -1) -> bytes:
        return self.raw.read(size)

    def __getattr__(self, name):
        return getattr(self.raw, name)


class GuardedHandler(BaseHTTPRequestHandler):
    """A request handler whose requests are bounded by one deadline and whose header lines are checked. Subclasses
    implement refuse(status, message), and call request_read() once the request (its body too) is in."""

    server: GuardedServer
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # no HTTP/0.9: every answer, errors included, has a status line
    # TCP_NODELAY: a streamed answer's pieces go out as written. With Nagle's algorithm a small write after the
    # headers waits for their ACK, which the client delays (~40 ms): the first token of a stream arrived 45 ms late.
    disable_nagle_algorithm = True

    def setup(self):
        self.timeout = self.server.request_timeout  # each read's bound too (the watchdog bounds the whole)
        super().setup()
        self.rfile = _RecordingReader(self.rfile)
        self._served = 0

    def refuse(self, status: int, message: str) -> None:
        """Answer an error and close: 408 instead of the refusal a request cut short by the deadline caused."""
        if self.cut_off and status != 408 and status < 500:
            status, message = 408, f"the request did not arrive within {self.server.request_timeout:g} s"
        for name, default in (("requestline", ""), ("request_version", "HTTP/1.1"), ("command", "")):
            if not getattr(self, name, None):  # nothing (or no request line) arrived yet
                setattr(self, name, default)
        try:
            self.answer_error(status, message)
        except _CONNECTION_GONE:
            pass
        self.close_connection = True

    def answer_error(self, status: int, message: str) -> None:
        """Write the error answer (the server's own shape), with Connection: close."""
        raise NotImplementedError

    def handle_one_request(self):
        self.cut_off = False
        self.answered = False
        self.rfile.lines, self.rfile.recording = [], True
        self._watchdog = threading.Timer(self.server.request_timeout, self._cut_off)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            super().handle_one_request()
        finally:
            self._watchdog.cancel()
        if self.cut_off and not self.answered and (self._served == 0 or any(self.rfile.lines)):
            # Cut off mid-request (or before the first one): say so. An idle kept-alive connection just closes.
            self.refuse(408, f"the request did not arrive within {self.server.request_timeout:g} s")
        if self.cut_off:
            self.close_connection = True
        self._served += 1

    def request_read(self) -> None:
        """The whole request is in: the deadline no longer applies (the answer may take minutes)."""
        self._watchdog.cancel()

    def _cut_off(self) -> None:
        self.cut_off = True
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        for number, line in enumerate(self.rfile.lines[1:], start=1):
            if line in (b"\r\n", b"\n"):
                break
            if not _HEADER_LINE.match(line):
                self.refuse(400, f"header line {number} is not a field name, a colon and a value (no space before "
                                 "the colon, no line folding, no bare CR)")
                return False
        host = self.headers.get("Host")
        if host is not None and not loopback_host(host):
            self.refuse(400, f"Host {host[:60]!r} is not this machine: local mode answers only Host 127.0.0.1 or "
                             "localhost (a web page's own name pointed at 127.0.0.1 is refused: DNS rebinding)")
            return False
        return True

    def handle_expect_100(self) -> bool:
        """No 100 Continue from the library before the request is checked: the server sends it (continue_body)
        once the headers are accepted, and a refusal goes out instead of it."""
        return True

    def continue_body(self) -> None:
        """The headers are accepted: a client waiting for 100 Continue (Expect) may send the body now."""
        if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version >= "HTTP/1.1":
            self.send_response_only(100)
            self.end_headers()

    def log_error(self, format, *args):
        # handle_one_request catches a read timeout itself and only logs it: answer it here.
        if format.startswith("Request timed out"):
            self.refuse(408, f"the request did not arrive within {self.server.request_timeout:g} s")

    def send_error(self, code, message=None, explain=None):
        """The library's own refusals (bad request line, long header line, too many headers, ...), in the server's
        shape; 408 when the deadline cut the request short."""
        from http import HTTPStatus

        self.refuse(code, message or HTTPStatus(code).phrase)

    def send_response(self, code, message=None):
        self.answered = True
        super().send_response(code, message)


def read_body(handler: GuardedHandler, limit: int) -> bytes | None:
    """The request's body, or None after refusing it (every check made before a byte is read): chunked uploads are
    411 (a length is required: no body of unknown size is read), a Content-Length that is not one number in digits
    400, one over `limit` 413; a body cut short is 408 when the deadline cut it, else the connection just closes
    (the client went away)."""
    if handler.headers.get("Transfer-Encoding"):
        handler.refuse(411, "send the body with a Content-Length, not Transfer-Encoding")
        return None
    values = handler.headers.get_all("Content-Length") or []
    if not values:
        return b""
    if len({v.strip() for v in values}) != 1 or not re.fullmatch(r"[0-9]+", values[0].strip()):
        shown = ", ".join(values)[:40]
        handler.refuse(400, f"Content-Length {shown} is not one length in digits")
        return None
    digits = values[0].strip().lstrip("0") or "0"
    # More digits than the limit has is over it (never converted: a length of thousands of digits is no number
    # worth reading).
    length = int(digits) if len(digits) <= len(str(limit)) else limit + 1
    if length > limit:
        if len(digits) > len(str(limit)):
            handler.refuse(413, f"the body is {digits[:20]}{'...' if len(digits) > 20 else ''} bytes; the limit is "
                                f"{limit}")
            return None
        handler.refuse(413, f"the body is {length} bytes; the limit is {limit}")
        return None
    handler.continue_body()
    body = handler.rfile.read(length)
    if len(body) < length:
        if handler.cut_off:
            handler.refuse(408, f"the request did not arrive within {handler.server.request_timeout:g} s")
        handler.close_connection = True
        return None
    return body
