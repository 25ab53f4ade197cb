"""A local stand-in for the deployed REST API stage: same routes, API key check, gateway error bodies and Lambda
proxy event, calling the same handler function, which validates every request as it does deployed. It has no
request logic of its own: the routes, the error table and the handler all come from lambda/model_api.

What it does not emulate: usage-plan throttling and quotas (one user, one machine), and API Gateway's 29 s limit.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Callable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from model_api.errors import GATEWAY_ERRORS, error_body

log = logging.getLogger("local.gateway")

# API Gateway's own messages for the errors it raises before the Lambda runs.
MESSAGES = {
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "INVALID_API_KEY": "Forbidden",
    "REQUEST_TOO_LARGE": "Request Too Long",
}
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # REST API payload limit
STAGE = "v1"


class LocalGateway:
    """Turns HTTP requests into API Gateway REST proxy events for each model's `handler(event, context)`."""

    def __init__(self, handlers: Mapping[str, Callable[[dict, object], dict]], api_key: str, routes: Sequence):
        """handlers: model name -> handler; routes: model_api.routes.Route list."""
        self._api_key = api_key
        self._routes: dict[str, dict] = {}
        for route in routes:
            self._routes.setdefault(route.path, {})[route.method] = handlers[route.model]

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
               source_ip: str = "127.0.0.1") -> tuple[int, dict, bytes]:
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        if path.startswith(f"/{STAGE}/"):
            path = path[len(STAGE) + 1:]
        lowered = {k.lower(): v for k, v in headers.items()}
        methods = self._routes.get(path)
        if methods is None or method not in methods:
            return _gateway_error("MISSING_AUTHENTICATION_TOKEN")
        if lowered.get("x-api-key") != self._api_key:
            return _gateway_error("INVALID_API_KEY")
        if len(body) > MAX_PAYLOAD_BYTES:
            return _gateway_error("REQUEST_TOO_LARGE")
        query = parse_qs(url.query, keep_blank_values=True)
        handler = methods[method]
        event = _proxy_event(method, path, url.path, headers, query, body, source_ip, self._api_key)
        context = SimpleNamespace(aws_request_id=event["requestContext"]["requestId"], function_name="local")
        response = handler(event, context)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        return response["statusCode"], dict(response.get("headers") or {}), data


def _gateway_error(response_type: str, message: str | None = None) -> tuple[int, dict, bytes]:
    status, code = GATEWAY_ERRORS[response_type]
    body = json.dumps(error_body(code, message or MESSAGES.get(response_type, HTTPStatus(status).phrase)),
                      separators=(",", ":"))
    headers = {"Content-Type": "application/json"}
    if status == 429:
        headers["Retry-After"] = "1"
    return status, headers, body.encode()


def _proxy_event(method, resource, path, headers, query, body: bytes, source_ip, api_key) -> dict:
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers) or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": dict(query) or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource, "httpMethod": method, "path": f"/{STAGE}{resource}", "stage": STAGE,
            "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "apiKey": api_key, "userAgent": headers.get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address, gateway: LocalGateway | None = None):
        self.gateway = gateway
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _serve(self):
        started = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.gateway is None:
            status, headers, data = 503, {"Content-Type": "application/json"}, json.dumps(
                error_body("starting", "local mode is still loading the model")).encode()
        else:
            status, headers, data = self.server.gateway.handle(
                self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        print(f"{self.command} {urlsplit(self.path).path} -> {status} "
              f"({(time.monotonic() - started) * 1000:.0f} ms)", file=sys.stderr, flush=True)

    def __getattr__(self, name):
        # Every method reaches the gateway (an unknown one is its 404, as deployed), not http.server's 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)
