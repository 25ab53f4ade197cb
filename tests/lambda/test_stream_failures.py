"""A model stream that fails after its first part, through the real botocore client over a real socket: a stand-in
SageMaker runtime on 127.0.0.1 sends one PayloadPart of TGI's stream, then stalls, drops the connection or sends a
damaged event. botocore's EventStream reads the socket with urllib3 and wraps none of these errors
(botocore/eventstream.py, EventStream._create_raw_event_generator), so each must be named by model_api.aws; the
client gets an SSE `error` event in the API's error shape with no host, port or stack trace in it, and the request's
log line carries the code (the StreamErrors metric counts it)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from types import SimpleNamespace

import pytest
from lambda_rig import api_event, load_stream_handler, request_lines, streamed
from model_api import sse
from model_api.routes import ModelInfo, catalog_to_json

from local import eventstream

MODEL = ModelInfo("gpt2-tgi", "text-generation", "api-gpt2-tgi", "ml.g5.xlarge", streaming=True)
FIRST = (b'data:{"index":1,"token":{"id":1,"text":"a","logprob":0,"special":false},"generated_text":null,'
         b'"details":null}\n\n')


class StallingRuntime:
    """Answers every InvokeEndpointWithResponseStream with a 200 event stream whose first PayloadPart is FIRST;
    then, by `mode`: "stall" (nothing more until the test ends), "drop" (the connection closes mid-chunk),
    "damaged" (an event whose checksum is wrong)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.mode = "stall"
        self.release = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket):
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + eventstream.CONTENT_TYPE.encode() +
                               b"\r\nX-Amzn-SageMaker-Content-Type: text/event-stream\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n")
            part = eventstream.payload_part(FIRST)
            connection.sendall(b"%X\r\n%s\r\n" % (len(part), part))
            if self.mode == "stall":
                self.release.wait(30)  # bounded: the client's read timeout ends the test long before
            elif self.mode == "drop":
                connection.sendall(b"400\r\n" + b"x" * 10)  # a chunk announced, cut short
                connection.shutdown(socket.SHUT_RDWR)
            else:
                damaged = bytearray(eventstream.payload_part(b"data: more\n\n"))
                damaged[-1] ^= 0xFF
                connection.sendall(b"%X\r\n%s\r\n0\r\n\r\n" % (len(damaged), bytes(damaged)))

    def close(self):
        self.release.set()
        self.listener.close()


@pytest.fixture(scope="module")
def runtime():
    stand_in = StallingRuntime()
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="module")
def app(runtime):
    env = {"MODEL_NAME": MODEL.name, "MODEL_KIND": MODEL.kind, "ENDPOINT_NAME": MODEL.endpoint_name,
           "MODEL_PROTOCOL": "tgi", "MODEL_CATALOG": catalog_to_json([MODEL]), "AWS_REGION": "eu-west-1",
           "MODEL_STREAMING": "true", "STREAM_SECONDS": "60",
           "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": f"http://127.0.0.1:{runtime.port}",
           "INVOKE_READ_TIMEOUT_SECONDS": "0.5", "INVOKE_CONNECT_TIMEOUT_SECONDS": "2"}
    app, _ = load_stream_handler(env)
    return app


@pytest.mark.parametrize("mode, code", [("stall", "model_timeout"), ("drop", "model_connection_lost"),
                                        ("damaged", "bad_model_response")])
def test_a_model_stream_that_fails_after_one_part_ends_with_an_error_event(runtime, app, caplog, monkeypatch,
                                                                           mode, code):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    runtime.mode = mode
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    chunks = app.stream(api_event("POST", {"model": MODEL.name, "prompt": "x", "stream": True},
                                  resource="/v1/completions"), SimpleNamespace(aws_request_id=request_id))
    with caplog.at_level(logging.INFO, logger="model_api"):
        head, body = streamed(chunks)
    assert head["statusCode"] == 200
    events = [(name, json.loads(data)) for name, data in sse.events([body]) if data != "[DONE]"]
    assert events[0][1]["choices"][0]["text"] == "a"  # the part before the failure reached the client
    name, last = events[-1]
    assert name == "error" and last["error"]["code"] == code and last["error"]["type"] == "server_error"
    text = body.decode()
    assert str(runtime.port) not in text and "127.0.0.1" not in text and "Traceback" not in text
    line, = request_lines(caplog)
    assert line["request_id"] == request_id and line["stream_error"] == code and line["status"] == 200
    assert line["events"] == 1  # the chunk of the part before the failure
    assert line["cause"] == {"stall": "ReadTimeoutError", "drop": "ProtocolError", "damaged": "ChecksumMismatch"}[mode]
    assert line["_aws"]["CloudWatchMetrics"][0]["Metrics"] and line["StreamErrors"] == 1


def test_an_unexpected_failure_mid_stream_is_an_internal_error_event_and_logged(runtime, app, caplog, monkeypatch):
    from model_api import aws

    def broken(stream):
        yield FIRST
        raise KeyError("secret internals at /var/task/model_api/streaming.py")

    monkeypatch.setattr(aws.ModelStream, "__iter__", broken)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    runtime.mode = "damaged"
    chunks = app.stream(api_event("POST", {"model": MODEL.name, "prompt": "x", "stream": True},
                                  resource="/v1/completions"), SimpleNamespace(aws_request_id="req-bug"))
    with caplog.at_level(logging.INFO, logger="model_api"):
        head, body = streamed(chunks)
    name, last = list(sse.events([body]))[-1]
    assert head["statusCode"] == 200
    assert name == "error" and json.loads(last)["error"] == {
        "code": "internal_error", "message": "unexpected error; quote the X-Request-Id header when reporting it",
        "type": "server_error", "param": None}
    assert "/var/task" not in body.decode() and "KeyError" not in body.decode()
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)
    line, = request_lines(caplog)
    assert line["stream_error"] == "internal_error" and line["cause"] == "KeyError"


@pytest.mark.parametrize("raised, status, code", [
    ("stream-broken", 502, "model_connection_lost"),
    ("timeout", 504, "model_timeout"),
    ("internal", 502, "model_unavailable"),
    ("botocore", 502, "model_connection_lost"),
])
def test_each_model_stream_failure_has_its_status(raised, status, code):
    """What ModelStream raises is the status a stream refused at its first item answers with."""
    from botocore.exceptions import ClientError, ConnectionClosedError
    from model_api.aws import ModelStream
    from model_api.errors import ApiError

    def events():
        yield {"PayloadPart": {"Bytes": b"x"}}
        if raised == "botocore":
            raise ConnectionClosedError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com")
        message = {"stream-broken": "the connection to the model broke", "internal": "internal failure",
                   "timeout": "did not complete sending the inference response in the allotted time"}[raised]
        error_code = "InternalStreamFailure" if raised == "internal" else "ModelStreamError"
        raise ClientError({"Error": {"Code": error_code, "Message": message}}, "InvokeEndpointWithResponseStream")

    parts = iter(ModelStream(events()))
    assert next(parts) == b"x"
    with pytest.raises(ApiError) as caught:
        next(parts)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert "amazonaws.com" not in caught.value.message
