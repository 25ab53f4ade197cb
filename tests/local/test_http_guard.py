"""local/http_guard.py in-process, with a trivial handler: one deadline per request (a client that trickles is cut off
like a silent one), header lines as RFC 9112 wants them, and a cap on connections served at once."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from local.http_guard import GuardedHandler, GuardedServer, loopback_host, read_body

TIMEOUT = 0.6


class Echo(GuardedHandler):
    """Answers 200 with the body's length; refusals as {"status": ..., "message": ...}."""

    def log_message(self, *args):
        pass

    def answer_error(self, status, message):
        self._send(status, {"status": status, "message": message}, close=True)

    def _send(self, status, value, close=False):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = read_body(self, 1000)
        if body is None:
            return
        self.request_read()
        if self.headers.get("X-Hold"):  # a slow answer: the deadline no longer applies once the request is in
            time.sleep(float(self.headers["X-Hold"]))
        self._send(200, {"length": len(body)})


@pytest.fixture
def server():
    made = GuardedServer(("127.0.0.1", 0), Echo, request_timeout=TIMEOUT, max_connections=2)
    threading.Thread(target=made.serve_forever, daemon=True).start()
    yield made
    made.shutdown()
    made.server_close()


def exchange(server, chunks, pause=0.0):
    """Send chunks (pausing between them); (status, answer or None, seconds until the answer or the close)."""
    started = time.monotonic()
    with socket.create_connection(server.server_address, timeout=5) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            time.sleep(pause)
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    if not data:
        return None, None, time.monotonic() - started
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(rest), time.monotonic() - started


def _length(data: bytes) -> int:
    head = data.partition(b"\r\n\r\n")[0]
    return next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
                0)


REQUEST = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"


def test_a_whole_request_has_one_deadline_not_one_per_read(server):
    # One byte every 0.25 s never lets a read wait the 0.6 s a read may take; the request as a whole still may not.
    status, answer, elapsed = exchange(server, [bytes([b]) for b in REQUEST], pause=0.25)
    assert (status, answer["message"]) == (408, "the request did not arrive within 0.6 s")
    assert elapsed < len(REQUEST) * 0.25  # cut off well before the last byte would have come
    assert exchange(server, [REQUEST])[:2] == (200, {"length": 2})
    # A body that comes too slowly is cut off too; an answer that takes long, once the request is in, is not.
    assert exchange(server, [REQUEST[:-2], b"{", b"}"], pause=0.5)[0] == 408
    held = REQUEST.replace(b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\nX-Hold: 1.0\r\n")
    assert exchange(server, [held])[:2] == (200, {"length": 2})


@pytest.mark.parametrize("line, number", [(b"X-Key : value\r\n", 2), (b"X-Key:\tok\r\n folded\r\n", 3),
                                          (b"X-Key: a\rb\r\n", 2), (b"X Key: value\r\n", 2)])
def test_a_header_line_that_is_not_name_colon_value_is_400(server, line, number):
    status, answer, _ = exchange(server, [b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + line + b"Content-Length: 0\r\n\r\n"])
    assert status == 400 and answer["message"] == (f"header line {number} is not a field name, a colon and a value "
                                                   "(no space before the colon, no line folding, no bare CR)")
    good = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Key:value \r\nContent-Length: 0\r\n\r\n"
    assert exchange(server, [good])[0] == 200


def test_connections_past_the_cap_get_503_at_once(server):
    held = [socket.create_connection(server.server_address, timeout=5) for _ in range(2)]
    try:
        time.sleep(0.1)  # both accepted and waiting for their request (up to the deadline)
        status, answer, elapsed = exchange(server, [REQUEST])
        assert (status, answer["error"]["code"]) == (503, "busy") and elapsed < TIMEOUT
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while exchange(server, [REQUEST])[0] != 200:  # the slots come back as those connections end
        assert time.monotonic() < deadline


def test_a_refused_client_still_sending_its_body_reads_the_503_not_a_reset(server):
    held = [socket.create_connection(server.server_address, timeout=5) for _ in range(2)]
    try:
        time.sleep(0.1)
        with socket.create_connection(server.server_address, timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900\r\n\r\n")
            try:
                for _ in range(200):  # far more than the socket buffers hold: the server must read it away
                    sock.sendall(b"x" * 4096)
            except OSError:
                pass
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:60]
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.1:8000", True), ("localhost", True),
                                            ("LocalHost:1", True), ("[::1]", True), ("[::1]:8000", True),
                                            ("evil.example", False), ("localhost.evil.example", False),
                                            ("127.0.0.2", False), ("[::2]:80", False), ("", False)])
def test_only_loopback_names_are_this_machine(host, loopback):
    assert loopback_host(host) is loopback
