"""A model deployed with streaming=true: lambda/stream_handler.py answers as API Gateway's streamed proxy answer
(head, then body), tokens from the endpoint's event stream (encoded as SageMaker sends it, parsed by the real
botocore client) in TGI's and OpenAI's event shapes, errors before and after the first byte, and the formats
themselves (model_api.sse, model_api.streaming)."""

from __future__ import annotations

import json
import logging
import uuid
from types import SimpleNamespace

import pytest
from lambda_rig import (
    FakeEndpoint,
    FakeStreamingEndpoint,
    api_event,
    load_stream_handler,
    request_lines,
    streamed,
    tiny_png,
)
from model_api import sse, streaming
from model_api.errors import ApiError
from model_api.routes import ModelInfo, catalog_to_json

CATALOG = [ModelInfo("gpt2-tgi", "text-generation", "api-gpt2-tgi", "ml.g5.xlarge", streaming=True),
           ModelInfo("assistant", "chat", "api-assistant", "ml.g5.xlarge", streaming=True),
           ModelInfo("gpt2-cpu", "text-generation", "api-gpt2-cpu", "ml.m5.xlarge")]


# A streaming image model's function (the image tests below).
IMAGE_STREAM_ENV = {
    "MODEL_NAME": "sd", "MODEL_KIND": "text-to-image", "ENDPOINT_NAME": "api-sd", "MODEL_PROTOCOL": "toolkit",
    "MODEL_CATALOG": catalog_to_json([ModelInfo("sd", "text-to-image", "api-sd", "ml.g5.xlarge", streaming=True)]),
    "AWS_REGION": "eu-west-1", "BUCKET_NAME": "b", "MODEL_STREAMING": "true", "IMAGE_STEP_SECONDS": "0.09",
    "INSTANCE_TYPE": "ml.g5.xlarge", "IMAGE_TIME_BUDGET_SECONDS": "58"}


def model_env(name: str, protocol: str, streams: bool = True) -> dict:
    info = next(m for m in CATALOG if m.name == name)
    return {"MODEL_NAME": name, "MODEL_KIND": info.kind, "ENDPOINT_NAME": info.endpoint_name,
            "MODEL_PROTOCOL": protocol, "MODEL_CATALOG": catalog_to_json(CATALOG), "AWS_REGION": "eu-west-1",
            **({"MODEL_STREAMING": "true", "STREAM_SECONDS": "60"} if streams else {})}


def rig(name: str, protocol: str, streams: bool = True):
    module, pipelines = load_stream_handler(model_env(name, protocol, streams))
    client = pipelines.endpoint._client
    return SimpleNamespace(module=module, pipelines=pipelines, stream=FakeStreamingEndpoint(client),
                           endpoint=FakeEndpoint(client))


@pytest.fixture(scope="module")
def tgi():
    return rig("gpt2-tgi", "tgi")


@pytest.fixture(scope="module")
def chat():
    return rig("assistant", "toolkit")


def call(r, body, resource, headers=None) -> tuple[dict, bytes]:
    chunks = r.module.stream(api_event("POST", body, resource=resource, headers=headers),
                              SimpleNamespace(aws_request_id=f"req-{uuid.uuid4().hex[:8]}"))
    return streamed(chunks)


def data_events(body: bytes) -> list:
    return [(name, data if data == "[DONE]" else json.loads(data)) for name, data in sse.events([body])]


# ------------------------------------------------------------------------------------------------------- TGI


def test_generate_with_stream_true_streams_tgi_events_a_token_each(tgi):
    tgi.stream.streams_tgi([" there", " was", " a", " tiger"])
    head, body = call(tgi, {"inputs": "Once upon a time", "stream": True}, "/generate")
    assert head["statusCode"] == 200 and head["headers"]["Content-Type"].startswith("text/event-stream")
    request = tgi.stream.requests[-1]
    assert request["url"].endswith("/endpoints/api-gpt2-tgi/invocations-response-stream")
    assert request["body"] == {"inputs": "Once upon a time", "stream": True, "parameters": {
        "max_new_tokens": 128, "return_full_text": False, "details": True}}
    events = data_events(body)
    assert [e["token"]["text"] for _, e in events] == [" there", " was", " a", " tiger"]
    assert [e["generated_text"] for _, e in events] == [None, None, None, " there was a tiger"]
    assert events[-1][1]["details"]["finish_reason"] == "length"
    assert tgi.stream.closed >= 1  # the model's stream is closed once the answer is whole


def test_generate_stream_route_streams_without_asking(tgi):
    tgi.stream.streams_tgi(["a", "b"], finish_reason="eos_token")
    head, body = call(tgi, {"inputs": "x"}, "/generate_stream")
    events = data_events(body)
    assert head["statusCode"] == 200 and events[-1][1]["details"]["finish_reason"] == "eos_token"


def test_openai_completions_stream_chunks_then_done(tgi):
    tgi.stream.streams_tgi(["Hel", "lo"], cut=3)
    head, body = call(tgi, {"model": "gpt2-tgi", "prompt": "Say", "stream": True, "echo": True,
                            "stream_options": {"include_usage": True}}, "/v1/completions")
    events = data_events(body)
    assert head["statusCode"] == 200 and events[-1] == (None, "[DONE]")
    chunks = [e for _, e in events[:-1]]
    assert [c["choices"][0]["text"] for c in chunks if c["choices"]] == ["Say", "Hel", "lo", ""]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"] == {"prompt_tokens": 0, "completion_tokens": 2, "total_tokens": 2}
    assert {c["object"] for c in chunks} == {"text_completion"} and chunks[0]["id"].startswith("cmpl-req-")


def test_an_error_before_the_first_token_keeps_its_status_and_json(tgi):
    tgi.stream.fails(424, "ModelError", {"ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": 422,
                                         "OriginalMessage": '{"error": "Input validation error: too long", '
                                                            '"error_type": "validation"}',
                                         "Message": "Received client error (422)"})
    head, body = call(tgi, {"inputs": "x", "stream": True}, "/generate")
    assert head["statusCode"] == 400 and head["headers"]["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "model_rejected_input" and "Input validation error: too long" in error["message"]


def test_an_error_after_the_first_token_is_an_error_event_in_the_api_shape(tgi):
    from local import eventstream

    tgi.stream.streams(b'data:{"index":1,"token":{"id":1,"text":"a","logprob":0,"special":false},'
                       b'"generated_text":null,"details":null}\n\n',
                       then=eventstream.model_stream_error("Your model primary did not complete sending the "
                                                           "inference response in the allotted time."))
    head, body = call(tgi, {"model": "gpt2-tgi", "prompt": "x", "stream": True}, "/v1/completions")
    events = data_events(body)
    assert head["statusCode"] == 200
    name, last = events[-1]
    assert name == "error" and last["error"]["code"] == "model_timeout" and last["error"]["type"] == "server_error"
    assert (None, "[DONE]") not in events


def test_tgi_error_events_mid_stream_become_ours(tgi):
    tgi.stream.streams(b'data:{"error":"Request failed during generation: CUDA out of memory","error_type":'
                       b'"generation"}\n\n')
    head, body = call(tgi, {"inputs": "x", "stream": True}, "/generate")
    # The first item failed: nothing was sent yet, so the status says it.
    assert head["statusCode"] == 502 and json.loads(body)["error"]["code"] == "model_error"


def test_a_stream_cut_short_is_an_error_event(tgi):
    tgi.stream.streams(b'data:{"index":1,"token":{"id":1,"text":"a","logprob":0,"special":false},'
                       b'"generated_text":null,"details":null}\n\n')
    head, body = call(tgi, {"inputs": "x", "stream": True}, "/generate")
    name, last = data_events(body)[-1]
    assert name == "error" and last["error"]["code"] == "model_connection_lost"


def test_a_reader_that_goes_away_closes_the_model_stream(tgi):
    tgi.stream.streams_tgi(["a", "b", "c", "d"], cut=200)
    closed = tgi.stream.closed
    chunks = tgi.module.stream(api_event("POST", {"inputs": "x", "stream": True}, resource="/generate"),
                                SimpleNamespace(aws_request_id="req-gone"))
    next(chunks), next(chunks)  # the head and the first token, then the client hangs up
    chunks.close()
    assert tgi.stream.closed == closed + 1


def test_buffered_requests_of_a_streaming_model_answer_whole_after_the_head(tgi):
    tgi.endpoint.returns_json([{"generated_text": " whole"}])
    head, body = call(tgi, {"inputs": "x"}, "/generate")
    assert head["statusCode"] == 200 and json.loads(body)["generated_text"] == " whole"
    head, body = call(tgi, {"inputs": "x", "stream": "yes"}, "/generate")
    assert head["statusCode"] == 400 and "stream must be true or false" in json.loads(body)["error"]["message"]


# ------------------------------------------------------------------------------------------------------ chat


def test_chat_stream_from_a_toolkit_model_is_the_whole_reply_in_openai_chunks(chat):
    chat.endpoint.returns_json({"reply": "Hello there!"})
    head, body = call(chat, {"model": "assistant", "messages": [{"role": "user", "content": "Hi"}],
                             "stream": True}, "/v1/chat/completions")
    events = [e for _, e in data_events(body)]
    assert head["statusCode"] == 200 and events[-1] == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in events[:-1]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "Hello there!"}, {}]
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[0]["object"] == "chat.completion.chunk"


def test_openai_errors_before_the_stream_keep_openai_shape(chat):
    head, body = call(chat, {"model": "other", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
                      "/v1/chat/completions")
    error = json.loads(body)["error"]
    assert head["statusCode"] == 404 and error["code"] == "model_not_found" and "type" in error


# ------------------------------------------------------------------------------------------- streaming off


def test_a_model_that_does_not_stream_refuses_stream_true_and_has_no_stream_route():
    r = load_stream_handler(model_env("gpt2-cpu", "pipeline", streams=False))[1]
    response = r.handle(api_event("POST", {"inputs": "x", "stream": True}, resource="/models/gpt2-cpu"),
                         SimpleNamespace(aws_request_id="r"))
    error = json.loads(response["body"])["error"]
    assert response["statusCode"] == 400 and error["code"] == "streaming_off" and "streaming=true" in \
        error["message"]
    assert ("/models/gpt2-cpu/generate_stream", "POST") not in r.routes
    assert ("/models/gpt2-tgi/generate_stream", "POST") in {(x.path, x.method) for x in r.api_routes}


def test_the_buffered_handler_never_answers_a_stream_it_cannot_send(tgi):
    response = tgi.pipelines.handle(api_event("POST", {"inputs": "x", "stream": True}, resource="/generate"),
                                     SimpleNamespace(aws_request_id="r"))
    assert response["statusCode"] == 500 and "misconfigured" in response["body"]


# ------------------------------------------------------------------------------------------------- formats


def test_sse_decoder_takes_any_cut_and_any_line_ending():
    stream = "data: {\"a\": 1}\r\n\r\n: keep-alive\n\nevent: error\ndata: x\ndata: y\r\r"
    raw = stream.encode() + "data: é\n\n".encode()
    for size in (1, 2, 3, 5, 64):
        decoder = sse.Decoder()
        found = [e for i in range(0, len(raw), size) for e in decoder.feed(raw[i:i + size])]
        assert found == [(None, '{"a": 1}'), ("error", "x\ny"), (None, "é")], size


def test_sse_event_is_one_data_line_and_refuses_line_breaks():
    assert sse.event({"a": "b\nc"}) == b'data: {"a":"b\\nc"}\n\n'
    assert sse.event({"x": 1}, "progress") == b'event: progress\ndata: {"x":1}\n\n'
    assert sse.event({"t": "é"}) == 'data: {"t":"é"}\n\n'.encode()  # UTF-8 as it is, not \\u escapes
    assert sse.event("[DONE]") == sse.DONE
    with pytest.raises(ValueError, match="an event's data must be one line"):
        sse.event("two\nlines")


def test_line_separators_in_tokens_reach_huggingface_hubs_stream_parser_whole(tgi):
    """huggingface_hub reads a stream's lines with httpx's LineDecoder, which splits as str.splitlines() does: on
    U+2028, U+2029 and U+0085 too (httpx2 _decoders.LineDecoder). Written raw, such a token cuts its event in two
    and the client fails mid-stream; escaped, it arrives as sent."""
    from httpx2._decoders import LineDecoder
    from huggingface_hub.inference._common import _stream_text_generation_response

    tokens = ["a\u2028b", "\u2029", "c\u0085d"]
    tgi.stream.streams_tgi(tokens)
    head, body = call(tgi, {"inputs": "x"}, "/generate_stream")
    decoder = LineDecoder()
    lines = decoder.decode(body.decode("utf-8")) + decoder.flush()
    assert [t.token.text for t in _stream_text_generation_response(iter(lines), details=True)] == tokens
    with pytest.raises(ValueError):
        sse.event("a\u2028b")  # text data is written as it is: refused rather than cut by such a client


def test_prelude_is_json_then_eight_nul_bytes_within_16_kb():
    data = sse.prelude(201, {"A": "b"}) + b"body"
    assert sse.split_prelude(data) == ({"statusCode": 201, "headers": {"A": "b"}}, b"body")
    assert sse.split_prelude(data[:10]) is None
    with pytest.raises(ValueError):
        sse.prelude(200, {"X": "y" * 20000})
    with pytest.raises(ValueError):
        sse.split_prelude(b"x" * (17 * 1024))


def test_tgi_events_carry_the_finish_on_the_last_token():
    items = [streaming.Token("a", 5), streaming.Token("b", 6), streaming.Finish("ab", "stop", 2)]
    events = [json.loads(d) for _, d in sse.events(streaming.tgi_events(items))]
    assert [e["index"] for e in events] == [1, 2] and events[0]["token"]["id"] == 5
    assert events[1]["generated_text"] == "ab" and events[1]["details"]["finish_reason"] == "eos_token"
    whole = [json.loads(d) for _, d in sse.events(streaming.tgi_events(streaming.whole("all")))]
    assert len(whole) == 1 and whole[0]["token"]["text"] == "all" and whole[0]["generated_text"] == "all"


def test_a_stream_past_its_time_ends_with_504():
    clock = iter([0.0, 1.0, 5.0, 11.0]).__next__
    with pytest.raises(ApiError) as caught:
        list(streaming.within([streaming.Token("a"), streaming.Token("b"), streaming.Token("c")], 10, clock))
    assert caught.value.status == 504 and caught.value.code == "stream_timeout"


def test_image_progress_events_then_the_result(monkeypatch, caplog):
    import base64

    from model_api import streamed as streamed_module


    png = tiny_png()
    module, pipelines = load_stream_handler(IMAGE_STREAM_ENV)
    monkeypatch.setattr(streamed_module, "PROGRESS_SECONDS", 0.01)
    answered = []

    class Store:
        def presign(self, key, ttl):
            from datetime import datetime, timezone
            return f"https://example/{key}", datetime(2030, 1, 1, tzinfo=timezone.utc)

        def put_all(self, objects, content_type):
            answered.extend(objects)

    pipelines.store = Store()
    gate = []

    def slow(request, **_):
        import time

        from botocore.awsrequest import AWSResponse
        from lambda_rig import _Raw
        time.sleep(0.1)  # long enough for a few progress events at 10 ms
        gate.append(1)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(json.dumps(
            {"generated_images": [base64.b64encode(png).decode()]}).encode()))

    pipelines.endpoint._client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", slow)
    with caplog.at_level(logging.INFO, logger="model_api"):
        head, body = streamed(module.stream(api_event("POST", {"prompt": "a tiger", "steps": 30}, resource="/images",
                                                       headers={"Accept": "text/event-stream"}),
                                             SimpleNamespace(aws_request_id="req-img")))
    line, = request_lines(caplog)
    assert line["request_id"] == "req-img" and line["streamed"] is True and "abandoned" not in line
    assert isinstance(line["first_token_ms"], float) and isinstance(line["model_latency_ms"], float)
    assert line["model_latency_ms"] >= 100  # the model's 0.1 s, measured on the worker thread
    events = [(name, json.loads(data)) for name, data in sse.events([body])]
    assert head["statusCode"] == 200 and gate
    progress = [e for name, e in events if name == "progress"]
    from model_api.kinds.text_to_image import DECODE_STEPS, FIXED_SECONDS

    # The estimate the work bound uses: 512x512 at 30 steps of 0.09 s, plus the fixed and decode time.
    expected = round(FIXED_SECONDS + 0.09 * (30 + DECODE_STEPS), 1)
    assert progress and all(e["estimated_seconds"] == expected for e in progress)
    name, result = events[-1]
    assert name == "result" and result["images"][0]["url"].startswith("https://example/") and len(answered) == 1
    # Refused before the answer begins: the status says it, nothing runs.
    head, body = streamed(module.stream(api_event("POST", {"prompt": "x", "width": 100000}, resource="/images",
                                                   headers={"Accept": "text/event-stream"}),
                                         SimpleNamespace(aws_request_id="req-bad")))
    assert head["statusCode"] == 400 and len(gate) == 1


def test_an_image_stream_whose_caller_hangs_up_stores_nothing(monkeypatch, caplog):
    """The model's answer cannot be stopped mid-call, but the work stops at its next step: no image is stored for
    a caller that went away (and the request's line says so)."""
    import base64
    import logging
    import threading

    from lambda_rig import _Raw, request_lines
    from model_api import streamed as streamed_module

    module, pipelines = load_stream_handler(IMAGE_STREAM_ENV)
    monkeypatch.setattr(streamed_module, "PROGRESS_SECONDS", 0.01)
    stored, presigned = [], []

    class Store:
        def presign(self, key, ttl):
            presigned.append(key)
            from datetime import datetime, timezone
            return f"https://example/{key}", datetime(2030, 1, 1, tzinfo=timezone.utc)

        def put_all(self, objects, content_type):
            stored.extend(objects)

    pipelines.store = Store()
    release, answered = threading.Event(), threading.Event()

    def model(request, **_):
        from botocore.awsrequest import AWSResponse

        release.wait(10)  # the model works until the caller has gone
        answered.set()
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(json.dumps(
            {"generated_images": [base64.b64encode(tiny_png()).decode()]}).encode()))

    pipelines.endpoint._client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", model)
    with caplog.at_level(logging.INFO, logger="model_api"):
        chunks = module.stream(api_event("POST", {"prompt": "a tiger", "steps": 30}, resource="/images",
                                         headers={"Accept": "text/event-stream"}), SimpleNamespace(aws_request_id="r"))
        next(chunks), next(chunks)  # the head and a progress event, then the caller hangs up
        worker, = [t for t in threading.enumerate() if t.name == "images-r"]
        chunks.close()
        release.set()
        worker.join(10)
    assert answered.is_set() and stored == [] and presigned == []
    line, = request_lines(caplog)
    assert line["abandoned"] is True and "stream_error" not in line


def test_an_image_stream_whose_model_fails_ends_with_the_error_and_logs_it(caplog):
    from lambda_rig import request_lines

    module, pipelines = load_stream_handler(IMAGE_STREAM_ENV)
    FakeEndpoint(pipelines.endpoint._client).fails(424, "ModelError", {
        "ErrorCode": "INTERNAL_FAILURE_FROM_MODEL", "OriginalStatusCode": 500, "OriginalMessage": "CUDA error",
        "Message": "Received server error (500) from primary"})
    with caplog.at_level(logging.INFO, logger="model_api"):
        head, body = streamed(module.stream(api_event("POST", {"prompt": "a tiger"}, resource="/images",
                                                       headers={"Accept": "text/event-stream"}),
                                             SimpleNamespace(aws_request_id="req-fail")))
    name, data = list(sse.events([body]))[-1]
    assert head["statusCode"] == 200 and name == "error" and json.loads(data)["error"]["code"] == "model_error"
    line, = request_lines(caplog)
    assert line["stream_error"] == "model_error" and line["StreamErrors"] == 1


def test_a_streams_deadline_counts_from_the_requests_start_after_a_slow_first_token(tgi, monkeypatch):
    """The first token came 40 s after the request began: of the stream's 60 s, 19 are left for the rest (one
    kept back for the closing events), not 60 from the first token."""
    import time as real_time

    from model_api import streamed as streamed_module

    readings = iter([100.0, 140.0])
    now = [100.0]

    def clock():
        now[0] = next(readings, now[0])
        return now[0]

    given = []
    real_within = streaming.within
    monkeypatch.setattr(streamed_module, "time", SimpleNamespace(monotonic=clock, time=real_time.time))
    monkeypatch.setattr(streaming, "within", lambda items, seconds: given.append(seconds) or real_within(items, seconds))
    tgi.stream.streams_tgi([" there", " was"])
    head, body = call(tgi, {"inputs": "Once upon a time", "stream": True}, "/generate")
    assert head["statusCode"] == 200 and len(data_events(body)) == 2
    assert given == [60 - 40 - 1]


def test_the_prelude_limit_counts_the_delimiter_to_the_byte():
    bare = len(json.dumps({"statusCode": 200, "headers": {"X": ""}}, separators=(",", ":")))
    fits = sse.MAX_PRELUDE_BYTES - len(sse.DELIMITER) - bare  # head and delimiter: exactly 16 KB
    assert len(sse.prelude(200, {"X": "y" * fits})) == sse.MAX_PRELUDE_BYTES
    with pytest.raises(ValueError, match=f"the answer's head is {bare + fits + 1} bytes; API Gateway reads at most "
                                         "16384"):
        sse.prelude(200, {"X": "y" * (fits + 1)})
    # Reading: 16 KB without the delimiter may still be a head to come; one byte more is not.
    assert sse.split_prelude(b"x" * sse.MAX_PRELUDE_BYTES) is None
    with pytest.raises(ValueError, match="no head within the first 16 KB"):
        sse.split_prelude(b"x" * (sse.MAX_PRELUDE_BYTES + 1))
