"""Streaming end to end in local mode, over real sockets: the gateway passes a streaming model's answer on as it
comes (chunked), token events arrive before the answer ends, a caller that hangs up stops the answer, images send
progress events, a model deployed without streaming keeps today's answers, and make smoke checks the streams. (The
client libraries' own streaming: test_client_libraries.py.)"""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from urllib.parse import urlsplit

import pytest
from local_rig import LocalProcess, request
from model_api import sse


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """Stable Diffusion and GPT-2 on TGI, both streaming; 64 px default images so the banner's estimate is quick."""
    tmp_path = tmp_path_factory.mktemp("local-streaming")
    process = LocalProcess(tmp_path, "--api-key", "k", "-c", "models=stable-diffusion,gpt2-tgi,gpt2-cpu",
                           "-c", "stable-diffusion.streaming=true", "-c", "gpt2-tgi.streaming=true",
                           "-c", "min_size=64", "-c", "default_size=64", "-c", "default_steps=2")
    process.wait_until_serving()
    info = json.loads((tmp_path / "ready.json").read_text())
    info["process"] = process
    yield info
    assert process.stop() == 0, "".join(process.stderr[-20:])
    output = "".join(process.stdout + process.stderr)
    assert "Traceback" not in output, output[-3000:]


def open_stream(local, path: str, body: dict, headers: dict | None = None) -> http.client.HTTPResponse:
    url = urlsplit(local["api_url"])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.request("POST", path, body=json.dumps(body), headers={"x-api-key": "k", "Content-Type":
                                                                     "application/json", **(headers or {})})
    return connection.getresponse()


def test_token_events_arrive_before_the_answer_ends(local):
    response = open_stream(local, "/generate_stream", {"inputs": "Once upon a time",
                                                       "parameters": {"max_new_tokens": 40}})
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Type").startswith("text/event-stream")
    decoder = sse.Decoder()
    first = []
    while not first:
        first = decoder.feed(response.read1(65536))
    event = json.loads(first[0][1])
    assert event["index"] == 1 and event["generated_text"] is None  # the first token, with 39 still to come
    rest = list(sse.events([response.read()]))
    last = json.loads(rest[-1][1])
    assert last["index"] == 40 and last["details"]["finish_reason"] == "length"


def test_a_caller_that_hangs_up_stops_the_answer(local):
    process = local["process"]
    before = len(process.log_text().splitlines())
    url = urlsplit(local["api_url"])
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        body = json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 256}, "stream": True}).encode()
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: k\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the head, maybe a token: then gone
    # The stream's log line is written when it ends: with fewer events than the 256 tokens asked for.
    line = process.wait_for_log(
        lambda text: '"streamed": true' in text and '"route": "/generate"' in text, deadline_seconds=30)
    assert json.loads(line)["events"] < 256, line
    assert len(process.log_text().splitlines()) > before
    # The model is free again at once.
    status, _, answer = request(local, "POST", {"inputs": "x", "parameters": {"max_new_tokens": 3}}, key="k",
                                path="/generate")
    assert status == 200 and isinstance(answer["generated_text"], str)


def test_images_send_progress_then_the_result(local):
    response = open_stream(local, "/images", {"prompt": "a red apple", "width": 512, "height": 512, "steps": 30,
                                              "seed": 3}, {"Accept": "text/event-stream"})
    assert response.status == 200
    events = [(name, json.loads(data)) for name, data in sse.events(iter(lambda: response.read1(65536), b""))]
    progress = [e for name, e in events if name == "progress"]
    name, result = events[-1]
    assert name == "result" and len(result["images"]) == 1 and result["seed"] == 3
    # The tiny model takes seconds on this CPU at 512x512: at least one progress event, elapsed growing.
    assert progress and all(a["elapsed_seconds"] <= b["elapsed_seconds"] for a, b in zip(progress, progress[1:]))
    with urllib_open(result["images"][0]["url"]) as image:
        assert image.read(8) == b"\x89PNG\r\n\x1a\n"


def urllib_open(url: str):
    import urllib.request
    return urllib.request.urlopen(url, timeout=30)


def test_an_image_refused_before_it_starts_keeps_its_status(local):
    response = open_stream(local, "/images", {"prompt": "x", "width": 100000}, {"Accept": "text/event-stream"})
    assert response.status == 400 and json.loads(response.read())["error"]["code"] == "invalid_request"


def test_buffered_requests_of_streaming_and_other_models_answer_as_before(local):
    status, _, answer = request(local, "POST", {"prompt": "x", "width": 64, "height": 64, "steps": 1}, key="k",
                                path="/images")
    assert status == 200 and len(answer["images"]) == 1
    status, _, refused = request(local, "POST", {"inputs": "x", "stream": True}, key="k", path="/models/gpt2-cpu")
    assert status == 400 and refused["error"]["code"] == "streaming_off"
    status, _, missing = request(local, "POST", {"inputs": "x"}, key="k", path="/models/gpt2-cpu/generate_stream")
    assert status == 404 and "/models/gpt2-tgi/generate_stream" in missing["error"]["message"]


def test_make_smoke_checks_the_streams(local):
    from ops import smoke

    out = io.StringIO()
    started = time.monotonic()
    assert smoke.main(["--url", local["api_url"], "--key", "k"], out=out) == 0, out.getvalue()
    text = out.getvalue()
    for row in ("POST /models/gpt2-tgi (stream)", "POST /models/gpt2-tgi/v1/completions (stream)",
                "POST /models/stable-diffusion (progress)"):
        assert row in text, text
    assert "(stream)" not in text.split("POST /models/gpt2-cpu", 1)[1].split("\n")[0]
    assert time.monotonic() - started < 120


# ------------------------------------------------------------------------------------------- the stand-ins


@pytest.fixture(scope="module")
def tgi(tmp_path_factory):
    from local.tgi import TgiModel
    from local.tiny_models import build_tiny_causal_lm

    return TgiModel(build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm")))


def test_the_tgi_stand_in_stops_generating_when_its_reader_goes_away(tgi):
    body = json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 200}, "stream": True}).encode()
    stream = tgi.invoke_stream(body, "application/json", "application/json")
    first = next(stream)
    assert json.loads(first.removeprefix(b"data:"))["index"] == 1
    stream.close()
    deadline = time.monotonic() + 10
    made = tgi.tokens_made
    while time.monotonic() < deadline:  # the worker notices at its next token
        time.sleep(0.05)
        if tgi.tokens_made == made:
            break
        made = tgi.tokens_made
    assert made <= 5  # a queue of one: generation keeps pace with its reader, so it stopped within a token or two
    # The worker is free: the next request is answered whole.
    answer = json.loads(tgi.invoke(json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 3, "details": True}})
                                   .encode(), "application/json", "application/json")[0])
    assert answer[0]["details"]["generated_tokens"] == 3 and answer[0]["details"]["finish_reason"] == "length"


def test_the_tgi_stand_in_refuses_before_streaming_as_tgi_does(tgi):
    from local.toolkit import ModelError

    with pytest.raises(ModelError) as refused:
        tgi.invoke_stream(json.dumps({"inputs": "x", "parameters": {"top_p": 1.0}, "stream": True}).encode(),
                          "application/json", "application/json")
    assert refused.value.status == 422 and "top_p" in refused.value.message


def test_event_stream_messages_read_back_by_botocore():
    """local.eventstream writes what botocore's parser reads: payload parts and a modeled exception."""
    from botocore.eventstream import EventStreamBuffer

    from local import eventstream

    data = eventstream.payload_part(b"data: one\n\n") + eventstream.payload_part("é".encode()) + \
        eventstream.model_stream_error("took too long")
    buffer = EventStreamBuffer()
    buffer.add_data(data[:5])
    buffer.add_data(data[5:])
    messages = list(buffer)
    assert [m.payload for m in messages[:2]] == [b"data: one\n\n", "é".encode()]
    assert messages[0].headers[":event-type"] == "PayloadPart"
    assert messages[2].headers[":exception-type"] == "ModelStreamError"
    assert json.loads(messages[2].payload) == {"Message": "took too long", "ErrorCode": "ModelInvocationTimeExceeded"}
