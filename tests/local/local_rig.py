"""Helpers of the local mode tests: local mode as a subprocess, and HTTP requests to it."""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "Ctrl-C stops everything."
# The settings of the session's shared local mode (tests/local/conftest.py): make batch LOCAL=1 and the OpenAPI
# document must be given the same.
SETTINGS = ("-c", "min_size=64", "-c", "stable-diffusion.batch=true")
# The session's local mode with every text kind (tests/local/conftest.py local_text).
TEXT_MODELS = "gpt2-tgi,minilm-embeddings,chat-embeddings,gpt2-cpu,jumpstart-stable-diffusion"
TEXT_BATCH = ("-c", "minilm-embeddings.batch=true")
TEXT_STREAMING = ("-c", "gpt2-tgi.streaming=true", "-c", "chat-embeddings.streaming=true")


class LocalProcess:
    """`python -m local` as a subprocess; its output is drained by threads so pipes never fill."""

    def __init__(self, tmp_path: Path, *extra: str, cache_dir: Path | None = None, env: dict | None = None):
        self.log_file = tmp_path / "requests.log"  # the handlers' full JSON lines (the console has short ones)
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "local", "--port", "0", "--s3-port", "0", "--endpoint-port", "0",
             "--ready-file", str(tmp_path / "ready.json"), "--cache-dir", str(cache_dir or tmp_path / "cache"),
             "--log-file", str(self.log_file), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.lines: queue.Queue = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._drains = [
            threading.Thread(target=self._drain, args=(self.popen.stdout, self.stdout, self.lines), daemon=True),
            threading.Thread(target=self._drain, args=(self.popen.stderr, self.stderr, None), daemon=True),
        ]
        for thread in self._drains:
            thread.start()
        # Whatever happens to the test, no local mode outlives the test run.
        atexit.register(self._kill_if_alive)

    def wait_for_log(self, matches, deadline_seconds: float = 10) -> str:
        """The first line of the log file for which matches(line) is true, waiting for it to be written."""
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            found = next((line for line in self.log_text().splitlines() if matches(line)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError("no such log line:\n" + "\n".join(self.log_text().splitlines()[-5:]))

    def log_text(self) -> str:
        """What the handlers logged so far (JSON lines, as CloudWatch has them)."""
        return self.log_file.read_text(encoding="utf-8") if self.log_file.exists() else ""

    def _kill_if_alive(self):
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    @staticmethod
    def _drain(stream, sink: list, lines):
        for line in stream:
            sink.append(line)
            if lines is not None:
                lines.put(line)
        if lines is not None:
            lines.put(None)

    def wait_until_serving(self, deadline_seconds: float = 300) -> str:
        """The banner, once local mode says it serves; fails if it exits or takes too long."""
        deadline = time.monotonic() + deadline_seconds
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.popen.kill()
                raise AssertionError("local mode did not start in time:\n" + "".join(self.stdout)) from None
            if line is None:
                raise AssertionError("local mode exited early:\n" + "".join(self.stdout + self.stderr))
            if READY_LINE in line:
                return "".join(self.stdout)

    def wait_for_stderr(self, matches, deadline_seconds: float = 10) -> str:
        """The first console line (stderr) for which matches(line) is true, waiting for the drain thread to read it;
        fails after the deadline."""
        deadline, seen = time.monotonic() + deadline_seconds, 0
        while time.monotonic() < deadline:
            lines = list(self.stderr)
            for line in lines[seen:]:
                if matches(line):
                    return line
            seen = len(lines)
            time.sleep(0.02)
        raise AssertionError("no such console line:\n" + "".join(self.stderr[-20:]))

    def stop(self) -> int:
        """Ctrl-C, as a user would; the exit code, once all output has been read."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                raise AssertionError("local mode did not stop on Ctrl-C") from None
        for thread in self._drains:
            thread.join(timeout=10)
        return self.popen.returncode


def local_client(local: dict, service: str, **credentials):
    """A boto3 client of one of local mode's stand-ins (S3 and STS on s3_url, SageMaker on endpoint_url), signed
    with this run's credentials from its ready file (the only ones it takes), or with `credentials` given."""
    import boto3

    issued = local["credentials"]
    return boto3.client(service, region_name=local["region"],
                        endpoint_url=local["endpoint_url" if service.startswith("sagemaker") else "s3_url"],
                        **(credentials or {"aws_access_key_id": issued["access_key_id"],
                                           "aws_secret_access_key": issued["secret_access_key"]}))


def request(local, method="POST", body=None, query="", key="test-key", content_type="application/json",
            path="/images", headers=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(f"{local['api_url']}{path}{query}", data=data, method=method,
                                 headers=headers or {})
    if key is not None:
        req.add_header("x-api-key", key)
    if content_type and data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def error_rows(local_only: bool = False) -> dict[tuple[int, str], str]:
    """(status, code) -> who answers, for every row of the error catalog (model_api.errors.ERROR_CATALOG, the
    source of docs/errors.md); local_only: the rows local mode can produce, i.e. not marked "not in local mode"."""
    from model_api.errors import ERROR_CATALOG

    rows = {}
    for row in ERROR_CATALOG:
        if local_only and "not in local mode" in row.when and "the same way" not in row.when:
            continue
        for code in row.codes:
            rows[(row.status, code)] = row.source
    return rows
