"""A local stand-in for the deployed REST API stage: same routes, API key check, gateway error bodies and Lambda
proxy event, calling the same handler function, which validates every request as it does deployed. It has no
request logic of its own: the routes, the error table and the handler all come from lambda/model_api.

What it does not emulate: usage-plan throttling and quotas (one user, one machine), and API Gateway's 29 s limit.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import sys
import time
import uuid
from http import HTTPStatus
from types import SimpleNamespace
from typing import Callable, Iterator, Mapping, Optional, Sequence
from urllib.parse import parse_qs, urlsplit

from model_api import cors, sse
from model_api.auth import api_key_from
from model_api.errors import GATEWAY_ERRORS, KEY_MESSAGES, error_body
from model_api.fallback import answer as unrouted_answer
from model_api.routes import OPENAPI_PATH, Route, route_path

from local.http_guard import CONNECTION_GONE, GuardedHandler, GuardedServer, read_body

log = logging.getLogger("local.gateway")

# API Gateway's own messages for the errors it raises before the Lambda runs.
MESSAGES = {
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "REQUEST_TOO_LARGE": "Request Too Long",
    **KEY_MESSAGES,  # the deployed stage's own (stacks/rest_api.py)
}
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # REST API payload limit
STAGE = "v1"


class LocalGateway:
    """Turns HTTP requests into API Gateway REST proxy events for each model's `handler(event, context)`."""

    def __init__(self, handlers: Mapping[str, Callable[[dict, object], dict]], api_key: str, routes: Sequence,
                 openapi: Optional[str] = None, cors_origins: Sequence[str] = (), bearer_keys: bool = True):
        """handlers: model name -> handler; routes: model_api.routes.Route list; openapi: the document served at
        GET /openapi.json with no key, as the deployed gateway serves it (stacks/rest_api.py add_document);
        cors_origins: as the deployed gateway, preflight (OPTIONS) answers and CORS headers on its own errors;
        bearer_keys: as the deployed key authorizer, the key may come as `Authorization: Bearer <key>` too, and a
        request with no key at all is 401 (API Gateway's answer when the authorizer refuses)."""
        self._api_key = api_key
        self._bearer_keys = bearer_keys
        self._openapi = openapi
        self._cors = tuple(cors_origins)
        self._routes: dict[str, dict] = {}
        for route in routes:
            self._routes.setdefault(route.path, {})[route.method] = handlers[route.model]
        # What the fallback knows: every route, and GET /openapi.json when the document is served.
        self._all_routes = [*routes, *([Route(OPENAPI_PATH, "GET", "", "openapi")] if openapi is not None else [])]

    def _resource(self, path: str) -> tuple[Optional[str], Optional[dict]]:
        """(the route path a request path belongs to, its path parameters), (None, None) for none (model_api.routes
        route_path: the one matching rule for the deployed fallback and this stand-in)."""
        template = route_path(self._all_routes, path)
        if template is None or "{" not in template:
            return template, None
        names = re.findall(r"\{(\w+)\}", template)
        values = [part for part, pattern in zip(path.strip("/").split("/"), template.strip("/").split("/"))
                  if pattern.startswith("{")]
        return template, dict(zip(names, values))

    def _path(self, target: str) -> str:
        path = urlsplit(target).path.rstrip("/") or "/"
        if path.startswith(f"/{STAGE}/") and self._resource(path)[0] is None:
            # The deployed URL's stage (/v1/images); a route of its own that starts so (/v1/embeddings, OpenAI's)
            # is that route, as on a custom domain. Deployed with the stage: /v1/v1/embeddings.
            path = path[len(STAGE) + 1:]
        return path

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
               source_ip: str = "127.0.0.1") -> tuple[int, dict, bytes]:
        lowered = {k.lower(): v for k, v in headers.items()}
        return self._answer(method, self._path(target), urlsplit(target).query, headers, lowered, body, source_ip)

    def before_body(self, method: str, target: str, headers: Mapping[str, str],
                    source_ip: str = "127.0.0.1") -> Optional[tuple[int, dict, bytes]]:
        """The answer a request gets from its request line and headers alone, before its body is read (as API
        Gateway checks the key before any integration runs): a missing or wrong key, or a path and method no route
        has (the fallback's 404 or 405, which reads no body). None when the body is needed."""
        path = self._path(target)
        lowered = {k.lower(): v for k, v in headers.items()}
        if (method == "OPTIONS" and self._cors) or (path == OPENAPI_PATH and method == "GET" and
                                                    self._openapi is not None):
            return None
        refused = self._key_refusal(lowered)
        if refused is not None:
            return refused
        resource, _ = self._resource(path)
        if (self._routes.get(resource) or {}).get(method) is None:
            return self._answer(method, path, urlsplit(target).query, headers, lowered, b"", source_ip)
        return None

    def _key_refusal(self, lowered: Mapping[str, str]) -> Optional[tuple[int, dict, bytes]]:
        """The gateway's answer to a request without the key (401, with bearer keys) or with another (403)."""
        origin = lowered.get("origin")
        key = api_key_from(lowered) if self._bearer_keys else lowered.get("x-api-key")
        if key is None and self._bearer_keys:
            return self._gateway_error("UNAUTHORIZED", origin)
        if not hmac.compare_digest((key or "").encode("utf-8", "surrogatepass"), self._api_key.encode()):
            return self._gateway_error("INVALID_API_KEY", origin)
        return None

    def _gateway_error(self, response_type: str, origin: Optional[str]) -> tuple[int, dict, bytes]:
        status, headers, data = _gateway_error(response_type)
        return status, {**headers, **self._gateway_cors(origin)}, data

    def _gateway_cors(self, origin: Optional[str]) -> dict:
        """The deployed gateway's CORS headers on its own answers (stacks/rest_api.py gateway_cors_headers)."""
        if not self._cors:
            return {}
        headers = {"Access-Control-Expose-Headers": ", ".join(cors.EXPOSE_HEADERS)}
        if len(self._cors) == 1:
            headers["Access-Control-Allow-Origin"] = self._cors[0]
        elif origin is not None:
            headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
        return headers

    def _answer(self, method, path, query, headers, lowered, body, source_ip) -> tuple[int, dict, bytes]:
        origin = lowered.get("origin")
        if method == "OPTIONS" and self._cors:
            # CORS preflight: CDK's mock OPTIONS method on every resource, the fallback's /{proxy+} included, so
            # every path: no key, no Lambda.
            return 204, cors.preflight_headers(self._cors, origin), b""
        if path == OPENAPI_PATH and method == "GET" and self._openapi is not None:
            return 200, {"Content-Type": "application/json"}, self._openapi.encode("utf-8")
        # Every other method and path is a method of the API too (a route's, or the fallback's ANY): the same key
        # is required before anything answers.
        refused = self._key_refusal(lowered)
        if refused is not None:
            return refused
        if len(body) > MAX_PAYLOAD_BYTES:
            return self._gateway_error("REQUEST_TOO_LARGE", origin)
        resource, parameters = self._resource(path)
        handler = (self._routes.get(resource) or {}).get(method)
        event = _proxy_event(method, resource if handler else (resource or "/{proxy+}"), path, headers,
                             parse_qs(query, keep_blank_values=True), body, source_ip, self._api_key)
        event["pathParameters"] = parameters if handler else {"proxy": path.lstrip("/")}
        # What API Gateway tells the Lambda about the host it was called on (status URLs of async jobs).
        event["requestContext"]["domainName"] = lowered.get("host", "127.0.0.1")
        event["headers"] = {**(event["headers"] or {}), "X-Forwarded-Proto": "http"}
        context = SimpleNamespace(aws_request_id=event["requestContext"]["requestId"], function_name="local")
        if handler is None:  # the deployed fallback function's answer (lambda/unrouted.py), 404 or 405
            response = unrouted_answer(event, context.aws_request_id, self._all_routes, self._cors)
        else:
            response = handler(event, context)
        if not isinstance(response, dict):  # a streaming model's answer (lambda/stream_handler.py)
            return _streamed(response)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        return response["statusCode"], dict(response.get("headers") or {}), data


def _streamed(chunks) -> tuple[int, dict, Iterator[bytes]]:
    """A streamed proxy answer read as API Gateway reads it (response transfer mode STREAM): the head (status and
    headers, model_api.sse.prelude) within its first 16 KB, then the body as it comes, passed on chunk by chunk. A
    head that is missing or malformed is the gateway's 502, as deployed (an integration failure)."""
    pieces = iter(chunks)
    data = b""
    try:
        while (found := sse.split_prelude(data)) is None:
            data += next(pieces)
    except (StopIteration, ValueError) as error:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        print(f"local: a streamed answer had no valid head ({type(error).__name__}: {error})", file=sys.stderr,
              flush=True)
        return _gateway_error("INTEGRATION_FAILURE", "Internal server error")
    head, rest = found

    def body() -> Iterator[bytes]:
        try:
            if rest:
                yield rest
            yield from pieces
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the client went away: the Lambda's answer (and the model's) stops

    return head["statusCode"], dict(head.get("headers") or {}), body()


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


# HTTP framing, checked before anything is read: what API Gateway's own front door refuses, answered here in the
# API's JSON error shape. The standard library's server, hardened where it is not strict enough on its own (the
# deadline, header lines and connection cap: local/http_guard.py):
# - Content-Length must be plain digits, one value; negative, malformed or conflicting values: 400;
# - Transfer-Encoding (chunked uploads): 411, a length is required (no body of unknown size is read);
# - bodies over the REST API's 10 MB payload limit: 413, refused from the header, the body never read;
# - a request line over MAX_TARGET bytes: 414; headers over MAX_HEADER_BYTES in all (or one line over the
#   library's 64 KB, or over 100 of them): 431;
# - a header line with space before its colon, folded, or with a bare CR: 400;
# - a client that sends nothing, or less than its whole request, gets 408 once `request_timeout` seconds have passed
#   since it began (one deadline for the request, not per read);
# - more connections than max_connections at once: 503 with Retry-After;
# - a client that goes away is one quiet log line, never a traceback.
MAX_TARGET = 8192  # API Gateway's URL limit is about 8 KB
MAX_HEADER_BYTES = 10240  # API Gateway: 10 KB of request headers
_CONNECTION_GONE = CONNECTION_GONE
# The HTTP server's own refusals, each a row of the error catalog (model_api.errors, source "local mode").
FRAMING_ERRORS = {400: "bad_request", 408: "request_timeout", 411: "length_required", 413: "request_too_large",
                  414: "uri_too_long", 431: "headers_too_large", 505: "http_version_not_supported"}


class GatewayServer(GuardedServer):
    def __init__(self, address, gateway: LocalGateway | None = None, request_timeout: float = 10.0,
                 max_connections: int = 64):
        self.gateway = gateway
        super().__init__(address, _Handler, request_timeout, max_connections)


class _Handler(GuardedHandler):
    server: GatewayServer

    def log_message(self, *args):
        pass

    def parse_request(self) -> bool:
        if len(self.raw_requestline) > MAX_TARGET:
            self.requestline, self.request_version, self.command = "", "HTTP/1.1", ""
            self.refuse(414, f"the request line is over {MAX_TARGET} bytes")
            return False
        if not super().parse_request():
            return False
        size = sum(len(k) + len(v) + 4 for k, v in self.headers.items())
        if size > MAX_HEADER_BYTES:
            self.refuse(431, f"the request headers are {size} bytes; the limit is {MAX_HEADER_BYTES}")
            return False
        return True

    def answer_error(self, status: int, message: str) -> None:
        body = json.dumps(error_body(FRAMING_ERRORS.get(status, "bad_request"), message)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes | None:
        """The request body, or None after answering an error: every check is made before a byte is read."""
        body = read_body(self, MAX_PAYLOAD_BYTES)
        if body is not None:
            self.request_read()
        return body

    def _serve(self):
        started = time.monotonic()
        early = None if self.server.gateway is None else self.server.gateway.before_body(
            self.command, self.path, dict(self.headers.items()), self.client_address[0])
        if early is not None:  # answered from the headers: a body is never read, and its connection closes
            self.request_read()
            if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0").strip() != "0":
                self.close_connection = True
            self._write(started, *early)
            return
        body = self._body()
        if body is None:
            return
        if self.server.gateway is None:
            status, headers, data = 503, {"Content-Type": "application/json"}, json.dumps(
                error_body("starting", "local mode is still loading the model")).encode()
        else:
            status, headers, data = self.server.gateway.handle(
                self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        self._write(started, status, headers, data)

    def _write(self, started: float, status: int, headers: dict, data) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            if isinstance(data, bytes):
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            else:  # streamed: each piece as it comes, chunked
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for piece in data:
                        if piece:
                            self.wfile.write(b"%X\r\n" % len(piece) + piece + b"\r\n")
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                finally:
                    data.close()
        except _CONNECTION_GONE:
            self.close_connection = True
        print(f"{self.command} {urlsplit(self.path).path} -> {status} "
              f"({(time.monotonic() - started) * 1000:.0f} ms)", file=sys.stderr, flush=True)

    def __getattr__(self, name):
        # Every method reaches the gateway (an unknown one is its 404, as deployed), not http.server's 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)
