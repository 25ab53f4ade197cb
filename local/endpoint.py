"""Local SageMaker endpoints: models behind the inference container contract and the runtime API path.

- `GET /ping`, `POST /invocations`: the container contract (what SageMaker itself calls inside the instance), for
  the first model.
- `POST /endpoints/<name>/invocations`: the SageMaker runtime InvokeEndpoint API, so the unchanged Lambda code
  reaches each model through boto3 with only AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME set. Errors come back the way the
  runtime reports them (ModelError with the container's status, ValidationException for an unknown endpoint).
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local.toolkit import ModelError

RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
LOCAL_ACCOUNT = "000000000000"


class EndpointServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address):
        # endpoint name -> anything with invoke(body, content_type, accept) -> (bytes, content_type)
        self.models: dict = {}
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: EndpointServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: the API server logs one line per request
        pass

    def do_GET(self):
        if self.path == "/ping":
            self._send(200 if self.server.models else 503, b"", "text/plain")
        else:
            self._runtime_error(404, "UnknownOperationException", "not found")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type", "application/json")
        accept = self.headers.get("Accept", "application/json")
        if self.path == "/invocations" and self.server.models:
            self._invoke(next(iter(self.server.models.values())), body, content_type, accept, runtime=False)
            return
        match = RUNTIME_PATH.match(self.path)
        if not match:
            self._runtime_error(404, "UnknownOperationException", "not found")
        elif match["name"] not in self.server.models:
            self._runtime_error(400, "ValidationException",
                                f"Endpoint {match['name']} of account {LOCAL_ACCOUNT} not found.")
        else:
            self._invoke(self.server.models[match["name"]], body, content_type, accept, runtime=True)

    def _invoke(self, model, body: bytes, content_type: str, accept: str, runtime: bool) -> None:
        try:
            content, response_type = model.invoke(body, content_type, accept)
        except ModelError as error:
            if not runtime:  # the container contract: the container's own status and message
                self._send(error.status, error.message.encode(), "text/plain")
                return
            kind = "CLIENT" if 400 <= error.status < 500 else "SERVER"
            self._send(424, json.dumps({
                "ErrorCode": f"{kind}_ERROR_FROM_MODEL",
                "OriginalStatusCode": error.status,
                "OriginalMessage": error.message,
                "Message": f"Received {kind.lower()} error ({error.status}) from primary with message "
                           f"\"{error.message}\".",
            }).encode(), "application/json", {"x-amzn-ErrorType": "ModelError"})
            return
        extra = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"} if runtime else {}
        self._send(200, content, response_type, extra)

    def _runtime_error(self, status: int, error_type: str, message: str) -> None:
        self._send(status, json.dumps({"message": message}).encode(), "application/json",
                   {"x-amzn-ErrorType": error_type})

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
