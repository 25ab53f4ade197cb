"""Local mode's gateway as a real server: malformed framing, slow or silent clients, huge headers, URLs and bodies
each get a prompt JSON answer or a closed connection, over raw sockets; never a hang, a traceback or a 5xx."""

from __future__ import annotations

import json
import select
import socket
import time
from urllib.parse import urlsplit

import pytest
from conftest import REQUEST_TIMEOUT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def address(local) -> tuple[str, int]:
    url = urlsplit(local["api_url"])
    return url.hostname, url.port


def exchange(local, raw: bytes, wait: float = 10.0) -> tuple[int | None, dict | None, float]:
    """Send raw bytes; (status, JSON body or None, seconds until the answer or the close)."""
    started = time.monotonic()
    with socket.create_connection(address(local), timeout=wait) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before it has read everything we send
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                while data.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue): the final one follows
                    head, sep, data = data.partition(b"\r\n\r\n")
                    if not sep:
                        data = head
                        break
                if b"\r\n\r\n" in data and not data.startswith(b"HTTP/1.1 1"):
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    if len(rest) >= length:
                        break
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - started
    if not data:
        return None, None, elapsed
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    try:
        return status, json.loads(rest), elapsed
    except ValueError:
        return status, None, elapsed


def post(body_headers: str, body: bytes = b"") -> bytes:
    return (f"POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: test-key\r\nContent-Type: application/json\r\n"
            f"{body_headers}\r\n").encode() + body


@pytest.mark.parametrize("raw, status, code", [
    (post("Content-Length: abc\r\n"), 400, "bad_request"),
    (post("Content-Length: -5\r\n"), 400, "bad_request"),
    (post("Content-Length: 5\r\nContent-Length: 6\r\n", b"{}"), 400, "bad_request"),
    (post("Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), 411, "length_required"),
    (post("Content-Length: 99999999999\r\n"), 413, "request_too_large"),
    (post("Content-Length: " + "9" * 5000 + "\r\n"), 413, "request_too_large"),  # digits, just too many
    (post("Content-Length: 0000000000000002\r\n", b"{}"), 400, "invalid_request"),  # 2: the handler's answer
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "uri_too_long"),
    (post("X-Big: " + "b" * 11000 + "\r\nContent-Length: 2\r\n", b"{}"), 431, "headers_too_large"),
    (post("".join(f"X-{i}: v\r\n" for i in range(120)) + "Content-Length: 2\r\n", b"{}"), 431, "headers_too_large"),
    (b"BLAH\r\n\r\n", 400, "bad_request"),
    # RFC 9112: no space between a field name and its colon, no bare CR (local/http_guard.py)
    (post("X-Api-Key : test-key\r\nContent-Length: 2\r\n", b"{}"), 400, "bad_request"),
    (post("X-Note: a\rb\r\nContent-Length: 2\r\n", b"{}"), 400, "bad_request"),
])
def test_broken_framing_gets_a_prompt_json_4xx(local, raw, status, code):
    got, body, elapsed = exchange(local, raw)
    assert (got, body["error"]["code"]) == (status, code), body
    if status == 413:
        assert body["error"]["message"].endswith(f"bytes; the limit is {10 * 1024 * 1024}"), body
    assert elapsed < REQUEST_TIMEOUT  # answered from the headers, without waiting for a body


@pytest.mark.parametrize("raw", [b"", post("Content-Length: 100\r\n", b'{"prompt": "p"')])
def test_silent_or_short_clients_get_408_once_their_time_is_up(local, raw):
    status, body, elapsed = exchange(local, raw)
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert REQUEST_TIMEOUT * 0.9 <= elapsed < REQUEST_TIMEOUT + 5


def test_a_huge_body_is_refused_before_it_is_read(local):
    raw = post(f"Content-Length: {11 * 1024 * 1024}\r\n", b"x" * 65536)
    status, body, elapsed = exchange(local, raw)
    assert status == 413 and elapsed < REQUEST_TIMEOUT


def test_a_client_that_hangs_up_mid_request_leaves_the_server_serving(local):
    with socket.create_connection(address(local)) as sock:
        sock.sendall(post("Content-Length: 50\r\n", b"{"))
    small = b'{"prompt": "p", "width": 64, "height": 64, "steps": 1}'  # milliseconds, not seconds, on a busy CPU
    status, body, _ = exchange(local, post(f"Content-Length: {len(small)}\r\n", small))
    assert status in (200, 400) and body is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.one_of(st.integers(-10, 200).map(str), st.text(alphabet="0123456789 -+xe,", max_size=8)),
       body=st.binary(max_size=120), extra=st.sampled_from(["", "Transfer-Encoding: chunked\r\n",
                                                            "Expect: 100-continue\r\n"]))
def test_any_framing_gets_json_or_a_close_never_a_5xx(local, length, body, extra):
    status, answer, elapsed = exchange(local, post(f"Content-Length: {length}\r\n{extra}", body))
    assert elapsed < REQUEST_TIMEOUT + 5
    if status is not None:
        assert status < 500 and isinstance(answer, dict) and "error" in answer or status == 200, (status, answer)


def test_a_wrong_key_is_refused_from_the_headers_before_any_body_or_100_continue(local):
    # A client that waits for 100 Continue before sending its body reads the refusal instead, at once.
    raw = (b"POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: wrong\r\nContent-Type: application/json\r\n"
           b"Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
    with socket.create_connection(address(local), timeout=10) as sock:
        sock.sendall(raw)
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 403 "), head[:80]
    assert b"100 Continue" not in head and b"Connection: close" in head
    # A route no model has: the fallback's 404, also from the headers alone.
    status, body, elapsed = exchange(local, raw.replace(b"wrong", b"test-key").replace(b"/images", b"/nope"))
    assert (status, body["error"]["code"]) == (404, "not_found") and elapsed < REQUEST_TIMEOUT


def test_a_checked_request_gets_100_continue_then_its_answer(local):
    body = b'{"prompt": "p", "width": 64, "height": 64, "steps": 1}'
    with socket.create_connection(address(local), timeout=30) as sock:
        sock.sendall(b"POST /images HTTP/1.1\r\nHost: localhost\r\nx-api-key: test-key\r\nExpect: 100-continue\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "192.168.1.5", "127.0.0.1.nip.io"])
def test_a_host_that_is_not_this_machine_is_refused(local, host):
    raw = f"GET /openapi.json HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    status, body, _ = exchange(local, raw)
    assert (status, body["error"]["code"]) == (400, "bad_request")
    assert "local mode answers only Host 127.0.0.1 or localhost" in body["error"]["message"]
    for good in ("127.0.0.1", "localhost:8000", "[::1]:8000", "LOCALHOST"):
        assert exchange(local, raw.replace(host.encode(), good.encode()))[0] == 200


def test_a_client_still_sending_reads_its_408_not_a_reset(local):
    # Headers, then a body far larger than the deadline lets arrive, sent until the server stops taking it.
    with socket.create_connection(address(local), timeout=10) as sock:
        sock.sendall(post("Content-Length: 8000000\r\n"))
        started = time.monotonic()
        try:  # sending until the answer is there to read (or the server stops taking bytes)
            while time.monotonic() - started < REQUEST_TIMEOUT + 3 and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"x" * 1024)
                time.sleep(0.002)
        except OSError:
            pass
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
