"""The integration tests' HTTP checker (tests/integ/probe/index.py) on its own, against a loopback server: the
verdict names each failed expectation, values are read by path, and a "not now" answer (a serverless cold start,
a throttle) is asked again after its Retry-After, up to a bound."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "probe"))
import index as probe  # noqa: E402


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers: list[tuple[int, dict, bytes]] = []
        self.seen = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/x"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen += 1
        status, headers, body = self.server.answers.pop(0) if len(self.server.answers) > 1 else self.server.answers[0]
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    made = Server()
    yield made
    made.shutdown()


def test_the_verdict_names_each_failed_expectation_and_reads_values(server):
    body = json.dumps({"images": [{"url": "https://b/i.png"}], "error": None}).encode()
    server.answers = [(200, {"Content-Type": "application/json"}, body)]
    out = probe.handler({"url": server.url, "expect": {"status": 200, "type": "^application/json"},
                         "read": {"url": "body.images.0.url", "missing": "body.images.3.url"}})
    assert out == {"check": "ok", "status": 200, "attempts": 1, "url": "https://b/i.png", "missing": ""}
    out = probe.handler({"url": server.url, "expect": {"status": 201, "type": "^text/", "pattern": "nope",
                                                       "json": {"body.error": "x"}, "png": True}})
    assert out["check"].startswith("status 200, expected 201; Content-Type 'application/json' does not match "
                                   "'^text/'; the body does not match 'nope'; the body is not a PNG; body.error is "
                                   "None, expected 'x' (answer: ")


def test_a_not_now_answer_is_asked_again_after_its_retry_after(server):
    server.answers = [(503, {"Retry-After": "2"}, b"{}"), (429, {}, b"{}"), (200, {}, b"{}")]
    pauses = []
    out = probe.handler({"url": server.url, "expect": {"status": 200}}, sleep=pauses.append)
    assert (out["check"], out["attempts"], pauses) == ("ok", 3, [2.0, probe.RETRY_PAUSE])


def test_retries_are_bounded_and_an_expected_refusal_is_not_retried(server):
    server.answers = [(504, {"Retry-After": "600"}, b"{}")]
    pauses = []
    out = probe.handler({"url": server.url, "expect": {"status": 200}}, sleep=pauses.append)
    assert out["attempts"] == probe.ATTEMPTS and pauses == [probe.RETRY_PAUSE_MAX] * (probe.ATTEMPTS - 1)
    assert out["check"].startswith("status 504, expected 200")
    server.seen = 0
    out = probe.handler({"url": server.url, "expect": {"status": 504}}, sleep=pauses.append)
    assert out["check"] == "ok" and server.seen == 1
