"""local/gateway.py in-process: the answers its rows of the error catalog promise that need no model to show, and
what it decides from the headers alone."""

from __future__ import annotations

import json
import socket
import threading

from model_api.routes import Route

from local.gateway import GatewayServer, LocalGateway


def _exchange(server, raw: bytes) -> tuple[int, dict]:
    with socket.create_connection(server.server_address, timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def _served(gateway):
    server = GatewayServer(("127.0.0.1", 0), gateway, request_timeout=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_while_the_model_loads_every_request_is_503_starting():
    server = _served(None)
    try:
        status, body = _exchange(server, b"GET /images HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert (status, body["error"]["code"]) == (503, "starting")
        status, body = _exchange(server, b"GET /images HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n")
        assert (status, body["error"]["code"]) == (505, "http_version_not_supported")
    finally:
        server.shutdown()
        server.server_close()


def test_a_streamed_answer_without_its_head_is_the_gateways_502():
    def handler(event, context):
        yield b"no head here"

    gateway = LocalGateway({"m": handler}, "k", [Route("/generate", "POST", "m", "generate")])
    status, headers, body = gateway.handle("POST", "/generate", {"x-api-key": "k"}, b"{}")
    assert (status, json.loads(body)["error"]["code"]) == (502, "integration_failure")


def test_what_the_headers_decide_is_answered_before_the_body():
    gateway = LocalGateway({"m": lambda event, context: {}}, "k", [Route("/generate", "POST", "m", "generate")],
                           openapi="{}")
    assert gateway.before_body("POST", "/generate", {"x-api-key": "k"}) is None  # the handler needs the body
    assert gateway.before_body("GET", "/openapi.json", {}) is None  # keyless, answered whole later
    assert gateway.before_body("POST", "/generate", {})[0] == 401
    assert gateway.before_body("POST", "/generate", {"x-api-key": "no"})[0] == 403
    status, _, body = gateway.before_body("POST", "/nope", {"x-api-key": "k"})
    assert (status, json.loads(body)["error"]["code"]) == (404, "not_found")
    status, headers, _ = gateway.before_body("GET", "/v1/generate", {"Authorization": "Bearer k"})
    assert (status, headers["Allow"]) == (405, "POST")  # the stage prefix is read as deployed
