"""Handler test rig helpers: S3 served by moto on 127.0.0.1, the SageMaker endpoint faked at the botocore level (the real
client builds and sends the request; a before-send hook answers it like the runtime API would)."""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path

from botocore.awsrequest import AWSResponse

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"
REGION = "eu-west-1"
ENDPOINT_NAME = "test-stable-diffusion"


def tiny_png(width: int = 8, height: int = 8, shade: int = 0) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


class _Raw(io.BytesIO):
    def stream(self, **_):
        yield self.getvalue()


class FakeEndpoint:
    """Answers InvokeEndpoint calls of one client: each queued answer is bytes+content type, an error body, or an
    exception to raise (timeouts, resets). Records every request it saw."""

    def __init__(self, client):
        self.requests: list[dict] = []
        self.answers: list = []
        client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", self._answer)

    def returns(self, body: bytes, content_type: str = "image/png") -> "FakeEndpoint":
        self.answers.append(("ok", body, content_type))
        return self

    def returns_json(self, value) -> "FakeEndpoint":
        return self.returns(json.dumps(value).encode(), "application/json")

    def returns_png_sequence(self, images: list[bytes]) -> "FakeEndpoint":
        return self.returns(b"".join(images), "application/x-png-sequence")

    def returns_images(self, images: list[bytes]) -> "FakeEndpoint":
        body = json.dumps({"generated_images": [base64.b64encode(i).decode() for i in images], "prompt": "p"})
        return self.returns(body.encode(), "application/json")

    def fails(self, status: int, error_type: str, body: dict) -> "FakeEndpoint":
        self.answers.append(("error", status, error_type, body))
        return self

    def raises(self, exception: Exception) -> "FakeEndpoint":
        self.answers.append(("raise", exception))
        return self

    def _answer(self, request, **_):
        self.requests.append({"url": request.url, "headers": dict(request.headers),
                              "body": json.loads(request.body)})
        answer = self.answers.pop(0)
        if answer[0] == "raise":
            raise answer[1]
        if answer[0] == "ok":
            _, body, content_type = answer
            headers = {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
            return AWSResponse(request.url, 200, headers, _Raw(body))
        _, status, error_type, body = answer
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
        return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))


class FakeStreamingEndpoint:
    """Answers InvokeEndpointWithResponseStream calls of one client with the runtime's event stream (PayloadPart
    events, then optionally an exception event), encoded as SageMaker sends it and parsed by the real botocore
    client; or with an error before the stream. Records every request's body."""

    def __init__(self, client):
        self.requests: list[dict] = []
        self.answers: list = []
        self.closed = 0
        client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointWithResponseStream", self._answer)

    def streams(self, *parts: bytes, then: bytes = b"") -> "FakeStreamingEndpoint":
        """parts: the payload of each PayloadPart; then: raw event bytes after them (an exception event)."""
        self.answers.append(("ok", parts, then))
        return self

    def streams_tgi(self, tokens, finish_reason: str = "length", cut: int = 7) -> "FakeStreamingEndpoint":
        """TGI's events for these token texts, the bytes cut into parts of `cut` bytes (anywhere, as SageMaker may)."""
        events = b""
        for i, text in enumerate(tokens, 1):
            last = i == len(tokens)
            events += b"data:" + json.dumps({
                "index": i, "token": {"id": i, "text": text, "logprob": -0.5, "special": False},
                "generated_text": "".join(tokens) if last else None,
                "details": {"finish_reason": finish_reason, "generated_tokens": len(tokens), "seed": None}
                if last else None}).encode() + b"\n\n"
        return self.streams(*[events[i:i + cut] for i in range(0, len(events), cut)])

    def fails(self, status: int, error_type: str, body: dict) -> "FakeStreamingEndpoint":
        self.answers.append(("error", status, error_type, body))
        return self

    def _answer(self, request, **_):
        from local import eventstream

        self.requests.append({"url": request.url, "body": json.loads(request.body)})
        answer = self.answers.pop(0)
        if answer[0] == "error":
            _, status, error_type, body = answer
            return AWSResponse(request.url, status, {"Content-Type": "application/json", "x-amzn-ErrorType":
                                                     error_type}, _Raw(json.dumps(body).encode()))
        _, parts, then = answer
        raw = _ClosableRaw(b"".join(eventstream.payload_part(p) for p in parts) + then, self)
        return AWSResponse(request.url, 200, {"Content-Type": eventstream.CONTENT_TYPE,
                                              "X-Amzn-SageMaker-Content-Type": "text/event-stream"}, raw)


class _ClosableRaw(_Raw):
    def __init__(self, data: bytes, owner):
        super().__init__(data)
        self._owner = owner

    def close(self):
        self._owner.closed += 1
        super().close()


SIGNER_ROLE_ARN = "arn:aws:iam::123456789012:role/url-signer"


# The model every image test's function serves (a function's environment always names its model and kind).
IMAGE_MODEL = {"MODEL_NAME": "stable-diffusion", "MODEL_KIND": "text-to-image"}


def load_handler(env: dict):
    """A model's app (model_api.app.ModelApp) built from the given environment, as its function builds it. Image
    models sign URLs as SIGNER_ROLE_ARN, assumed through the same moto server that serves S3."""
    from model_api.app import ModelApp

    env = {"SIGNER_ROLE_ARN": SIGNER_ROLE_ARN, **env}
    if "AWS_ENDPOINT_URL_S3" in env:
        env.setdefault("AWS_ENDPOINT_URL_STS", env["AWS_ENDPOINT_URL_S3"])
    app = ModelApp(env)
    if app.store is not None:
        app.store.signing_client  # the background build, finished before the test's fakes are registered
    return app


def load_stream_handler(env: dict):
    """A streaming model's app: its stream() is the handler the streaming runtime calls. Returns (app, app), the
    streaming entry and the buffered pipelines being one object."""
    app = load_handler(env)
    return app, app


def streamed(chunks) -> tuple[dict, bytes]:
    """A streamed answer's head (status, headers) and body, read as API Gateway reads it."""
    from model_api import sse

    data = b"".join(chunks)
    head, body = sse.split_prelude(data)
    return head, body


def api_event(method="POST", body=None, query=None, resource="/images", base64_body=False, headers=None):
    """An API Gateway REST proxy event, as the deployed stage (and local mode) send it."""
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    if base64_body and body is not None:
        body = base64.b64encode(body.encode()).decode()
    return {
        "resource": resource, "path": resource, "httpMethod": method,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "queryStringParameters": query, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {"requestId": str(uuid.uuid4()), "stage": "v1", "httpMethod": method,
                           "resourcePath": resource},
        "body": body, "isBase64Encoded": base64_body,
    }


class ImagesForAnyRequest:
    """An endpoint that answers every InvokeEndpoint with as many valid PNGs as the request asked for, in the
    format its Accept header wants: whatever the handler lets through succeeds, so any 5xx is the handler's."""

    def __init__(self, client):
        self.calls = 0
        self._png = tiny_png()
        client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", self._answer)

    def _answer(self, request, **_):
        self.calls += 1
        count = json.loads(request.body)["parameters"]["num_images_per_prompt"]
        accept = request.headers["Accept"]
        accept = accept.decode() if isinstance(accept, bytes) else accept
        if accept == "image/png":
            return AWSResponse(request.url, 200, {"Content-Type": "image/png"}, _Raw(self._png))
        if accept == "application/x-png-sequence":
            return AWSResponse(request.url, 200, {"Content-Type": accept}, _Raw(self._png * count))
        body = json.dumps({"generated_images": [base64.b64encode(self._png).decode()] * count}).encode()
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(body))


class FakeAsyncEndpoint:
    """Answers InvokeEndpointAsync calls of one client as the runtime does (202, InferenceId in the body, the output
    and failure locations in headers), naming each output <path>/<inference id>.out. Records every request's
    headers; `fails(...)` queues an error answer instead."""

    def __init__(self, client, bucket: str, model: str = "stable-diffusion"):
        self.requests: list[dict] = []
        self.errors: list = []
        self.output_path = f"s3://{bucket}/jobs/output/{model}"
        self.failure_path = f"s3://{bucket}/jobs/failures/{model}"
        client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", self._answer)

    def fails(self, status: int, error_type: str, message: str) -> "FakeAsyncEndpoint":
        self.errors.append((status, error_type, message))
        return self

    def _answer(self, request, **_):
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        self.requests.append({"url": request.url, "headers": headers})
        if self.errors:
            status, error_type, message = self.errors.pop(0)
            return AWSResponse(request.url, status, {"Content-Type": "application/json",
                                                     "x-amzn-ErrorType": error_type},
                               _Raw(json.dumps({"message": message}).encode()))
        job_id = headers["X-Amzn-SageMaker-Inference-Id"]
        return AWSResponse(request.url, 202, {
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-OutputLocation": f"{self.output_path}/{job_id}.out",
            "X-Amzn-SageMaker-FailureLocation": f"{self.failure_path}/{job_id}-error.out",
        }, _Raw(json.dumps({"InferenceId": job_id}).encode()))


def request_lines(caplog) -> list[dict]:
    """The handler's per-request log lines, as Lambda's JSON log format writes them (model_api.log_json)."""
    from model_api.log_json import LambdaJsonFormatter

    formatter = LambdaJsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records
            if r.name == "model_api" and hasattr(r, "latency_ms")]
