"""lambda/stream_runtime.py against a Runtime API stand-in that records the exact bytes it is sent: streaming mode's
headers, the chunked body, error trailers after the first byte, /error before it, init errors, and the exec wrapper
(lambda/stream_bootstrap) starting the runtime with the interpreter Lambda passes it."""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
sys.path.insert(0, str(LAMBDA_DIR))
import stream_runtime  # noqa: E402


class RuntimeApiStandIn(ThreadingHTTPServer):
    """Hands out queued events on /next (then 410: no more, which ends a runtime's loop) and keeps every post."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: queue.Queue = queue.Queue()
        self.posts: list[dict] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def queue_event(self, event: dict, request_id: str = "req-1", trace: str = "Root=1-abc") -> None:
        self.events.put((json.dumps(event).encode(), request_id, trace))


class _Handler(BaseHTTPRequestHandler):
    server: RuntimeApiStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            body, request_id, trace = self.server.events.get_nowait()
        except queue.Empty:
            self._answer(410, b"no more events")
            return
        self.send_response(200)
        for name, value in (("Lambda-Runtime-Aws-Request-Id", request_id), ("Lambda-Runtime-Trace-Id", trace),
                            ("Lambda-Runtime-Deadline-Ms", "9999999999999"),
                            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:1:function:f"),
                            ("Content-Length", str(len(body)))):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        headers = {k.lower(): v for k, v in self.headers.items()}
        chunks, trailers = [], {}
        if headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                assert self.rfile.read(2) == b"\r\n"
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                trailers[name.strip()] = value.strip()
        else:
            chunks.append(self.rfile.read(int(headers.get("content-length", 0))))
        self.server.posts.append({"path": self.path, "headers": headers, "chunks": chunks, "trailers": trailers})
        self._answer(202, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def api():
    server = RuntimeApiStandIn()
    yield server
    server.shutdown()


def test_an_answer_streams_in_chunks_with_the_streaming_headers(api):
    api.queue_event({"path": "/generate"}, "req-7", trace="Root=1-xyz")
    seen, environ = {}, {}

    def handler(event, context):
        # botocore sends _X_AMZN_TRACE_ID as X-Amzn-Trace-Id: the invocation's X-Ray trace reaches SageMaker.
        seen.update(event=event, request_id=context.aws_request_id, trace=environ.get("_X_AMZN_TRACE_ID"),
                    remaining=context.get_remaining_time_in_millis())
        yield b'{"statusCode":200,"headers":{}}' + b"\0" * 8
        yield b"data: a\n\n"
        yield b""  # nothing to send: no empty chunk (which would end the body)
        yield b"data: b\n\n"

    stream_runtime.serve(stream_runtime.RuntimeApi(api.address), handler, invocations=1, environ=environ)
    post, = api.posts
    assert post["path"] == "/2018-06-01/runtime/invocation/req-7/response"
    assert post["headers"]["lambda-runtime-function-response-mode"] == "streaming"
    assert post["headers"]["content-type"] == "application/vnd.awslambda.http-integration-response"
    assert post["headers"]["trailer"] == "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    assert post["chunks"] == [b'{"statusCode":200,"headers":{}}' + b"\0" * 8, b"data: a\n\n", b"data: b\n\n"]
    assert post["trailers"] == {}
    assert seen["event"] == {"path": "/generate"} and seen["request_id"] == "req-7" and seen["remaining"] > 0
    assert seen["trace"] == "Root=1-xyz"


def test_a_failure_after_the_first_byte_goes_in_the_trailers_without_its_text_or_stack(api, caplog):
    api.queue_event({}, "req-5")

    def handler(event, context):
        yield b"head" + b"\0" * 8
        raise ValueError("HTTPSConnectionPool(host='runtime.sagemaker.eu-west-1.amazonaws.com', port=443)")

    stream_runtime.serve(stream_runtime.RuntimeApi(api.address), handler, invocations=1, environ={})
    post, = api.posts
    assert post["chunks"] == [b"head" + b"\0" * 8]
    assert post["trailers"]["Lambda-Runtime-Function-Error-Type"] == "Runtime.ValueError"
    document = json.loads(base64.b64decode(post["trailers"]["Lambda-Runtime-Function-Error-Body"]))
    assert document == {"errorType": "ValueError", "errorMessage": "the answer broke off (ValueError); the "
                        "function's log has the details under request req-5"}
    # The whole of it goes to the function's log instead.
    logged, = [r for r in caplog.records if r.getMessage() == "the answer broke off"]
    assert "port=443" in str(logged.exc_info[1])


def test_a_failure_before_any_byte_is_an_invocation_error(api):
    api.queue_event({}, "req-9")

    def handler(event, context):
        raise KeyError("missing")

    stream_runtime.serve(stream_runtime.RuntimeApi(api.address), handler, invocations=1, environ={})
    post, = api.posts
    assert post["path"] == "/2018-06-01/runtime/invocation/req-9/error"
    assert post["headers"]["lambda-runtime-function-error-type"] == "Runtime.KeyError"
    assert json.loads(post["chunks"][0])["errorType"] == "KeyError"


def test_the_wrapper_starts_the_runtime_with_lambdas_interpreter_and_logs_json(api, tmp_path):
    """What Lambda does: AWS_LAMBDA_EXEC_WRAPPER runs with the interpreter path and the runtime's own arguments."""
    (tmp_path / "echo_stream.py").write_text(
        "import logging\n"
        "def handler(event, context):\n"
        "    logging.getLogger('echo').info('answering', extra={'route': event['path']})\n"
        "    yield b'{\"statusCode\":200,\"headers\":{}}' + bytes(8)\n"
        "    yield event['path'].encode()\n")
    api.queue_event({"path": "/x"}, "req-w")
    env = {**os.environ, "AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": "echo_stream.handler",
           "LAMBDA_TASK_ROOT": str(LAMBDA_DIR), "PYTHONPATH": str(tmp_path), "AWS_LAMBDA_LOG_FORMAT": "JSON"}
    done = subprocess.run(["bash", str(LAMBDA_DIR / "stream_bootstrap"), sys.executable, "/var/runtime/bootstrap.py"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert os.access(LAMBDA_DIR / "stream_bootstrap", os.X_OK)  # Lambda runs it: it must be executable
    post, = api.posts
    assert post["chunks"] == [b'{"statusCode":200,"headers":{}}' + bytes(8), b"/x"]
    line = json.loads(next(line for line in done.stdout.splitlines() if "answering" in line))
    assert line["requestId"] == "req-w" and line["route"] == "/x" and line["level"] == "INFO"
    # The stand-in has no more events (410): the runtime's loop ends there.
    assert done.returncode != 0 and "410" in done.stderr


def test_a_handler_that_cannot_load_is_an_init_error(api):
    env = {**os.environ, "AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": "no_such_module.handler",
           "LAMBDA_TASK_ROOT": str(LAMBDA_DIR)}
    done = subprocess.run([sys.executable, str(LAMBDA_DIR / "stream_runtime.py")], env=env, capture_output=True,
                          text=True, timeout=60)
    post, = api.posts
    assert done.returncode == 1 and post["path"] == "/2018-06-01/runtime/init/error"
    assert json.loads(post["chunks"][0])["errorType"] == "ModuleNotFoundError"


def test_an_invocation_without_a_trace_does_not_inherit_the_one_before(api):
    api.queue_event({"n": 1}, "req-1", trace="Root=1-first")
    api.queue_event({"n": 2}, "req-2", trace="")  # X-Ray off for this one: the runtime sends no trace id
    traces, environ = [], {}

    def handler(event, context):
        traces.append(environ.get("_X_AMZN_TRACE_ID"))
        yield b'{"statusCode":200,"headers":{}}' + b"\0" * 8

    stream_runtime.serve(stream_runtime.RuntimeApi(api.address), handler, invocations=2, environ=environ)
    assert traces == ["Root=1-first", None]


def test_the_remaining_time_is_milliseconds_to_the_deadline_and_never_negative(monkeypatch):
    monkeypatch.setattr(stream_runtime.time, "time", lambda: 1_000.0)
    context = stream_runtime.Context("r", {"lambda-runtime-deadline-ms": "1005250"}, environ={})
    assert context.get_remaining_time_in_millis() == 5250
    assert stream_runtime.Context("r", {"lambda-runtime-deadline-ms": "999000"}, {}).get_remaining_time_in_millis() == 0
    assert stream_runtime.Context("r", {}, {}).get_remaining_time_in_millis() == 0
