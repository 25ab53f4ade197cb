"""A stand-in for S3 in the request-path benchmark: PUT stores, GET and HEAD return, after a fixed service latency.

moto is CPU-bound Python: four uploads to it queue behind one another on its own interpreter, which real S3 never
does, and its per-PUT CPU dwarfs the Lambda's. Real S3 answers a PUT of a few hundred KB in tens of milliseconds of
mostly waiting. This server models exactly that: it reads the body, answers after --latency-ms, and serves many
requests at once. Run as its own process: `python bench/s3_standin.py --port 0 --latency-ms 20`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OBJECTS: dict[str, bytes] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    latency = 0.0
    # Headers and body go out in two writes: with Nagle's algorithm on, the body waits for the client's delayed ACK
    # (~40 ms on Linux), an artifact of this server that real S3 does not have.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with LOCK:
            OBJECTS[self.path.split("?")[0]] = body
        time.sleep(self.latency)  # the modelled service time of S3, not work
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        with LOCK:
            body = OBJECTS.get(self.path.split("?")[0])
        time.sleep(self.latency)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()

    def do_GET(self):
        with LOCK:
            body = OBJECTS.get(self.path.split("?")[0])
        time.sleep(self.latency)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()
    Handler.latency = args.latency_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
