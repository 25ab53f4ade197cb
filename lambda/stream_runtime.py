"""A Lambda runtime that streams: Lambda's managed Python runtime answers each invocation in one piece, so a model
deployed with streaming=true runs this loop instead (stream_bootstrap, the function's AWS_LAMBDA_EXEC_WRAPPER,
starts it with the managed runtime's own interpreter). Standard library only; it speaks the Runtime API:

- GET /2018-06-01/runtime/invocation/next: the next event, its request id, deadline, function ARN and X-Ray trace
  id in headers (AWS Lambda Developer Guide, "Using the Lambda runtime API for custom runtimes");
- POST /2018-06-01/runtime/invocation/<id>/response in streaming mode: `Lambda-Runtime-Function-Response-Mode:
  streaming`, `Transfer-Encoding: chunked`, a chunk per piece the handler yields, the connection closed after the
  last one; an error after the first byte goes in the trailers `Lambda-Runtime-Function-Error-Type` and
  `Lambda-Runtime-Function-Error-Body` (base64), declared up front in `Trailer` ("Implementing response streaming
  in a custom runtime"). The Content-Type is API Gateway's streamed proxy answer,
  application/vnd.awslambda.http-integration-response: the handler's first bytes are its head (model_api.sse);
- POST .../<id>/error before a response begins, and /runtime/init/error when the handler cannot be loaded.

The handler (`_HANDLER`, module.function) is called as handler(event, context) and returns an iterable of bytes.
Logs are Lambda's JSON log format (model_api.log_json) when the function's log format is JSON, each line carrying
the request id, as the managed runtime writes them; `_X_AMZN_TRACE_ID` is set per invocation for X-Ray.
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Callable, Iterable, Optional

VERSION = "2018-06-01"
CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY = "Lambda-Runtime-Function-Error-Body"


class Context:
    """The handler's context object, as the managed runtime makes it (the attributes the handlers read)."""

    def __init__(self, request_id: str, headers: dict, environ=os.environ):
        self.aws_request_id = request_id
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn", "")
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


class RuntimeApi:
    """The Runtime API at `address` (AWS_LAMBDA_RUNTIME_API, host:port)."""

    def __init__(self, address: str):
        host, _, port = address.partition(":")
        self._host, self._port = host, int(port or 80)
        self._next = http.client.HTTPConnection(self._host, self._port)  # no timeout: /next waits for an event

    def next(self) -> tuple[bytes, dict]:
        """(the event's bytes, the invocation's headers in lowercase)."""
        self._next.request("GET", f"/{VERSION}/runtime/invocation/next")
        response = self._next.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"the Runtime API answered /next with {response.status}")
        return body, {k.lower(): v for k, v in response.getheaders()}

    def stream(self, request_id: str, chunks: Iterable[bytes]) -> Optional[BaseException]:
        """Send the answer as it is made; returns the error that cut it short (after the trailers said so), if any."""
        connection = http.client.HTTPConnection(self._host, self._port)
        connection.putrequest("POST", f"/{VERSION}/runtime/invocation/{request_id}/response",
                              skip_accept_encoding=True)
        for name, value in (("Content-Type", CONTENT_TYPE), ("Lambda-Runtime-Function-Response-Mode", "streaming"),
                            ("Transfer-Encoding", "chunked"), ("Trailer", f"{ERROR_TYPE}, {ERROR_BODY}")):
            connection.putheader(name, value)
        connection.endheaders()
        failure: Optional[BaseException] = None
        try:
            for chunk in chunks:
                if chunk:
                    connection.send(b"%X\r\n" % len(chunk) + chunk + b"\r\n")
            connection.send(b"0\r\n\r\n")
        except Exception as error:  # the handler failed mid-answer: Lambda passes the trailers on as an error
            failure = error
            try:
                connection.send(b"0\r\n" + _trailers(error, request_id) + b"\r\n")
            except OSError:
                pass  # the Runtime API connection itself broke: nothing more can be said on it
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        try:
            connection.getresponse().read()
        except (OSError, http.client.HTTPException) as error:
            failure = failure or error
        finally:
            connection.close()
        return failure

    def error(self, request_id: str, error: BaseException) -> None:
        self._post(f"/{VERSION}/runtime/invocation/{request_id}/error", error)

    def init_error(self, error: BaseException) -> None:
        self._post(f"/{VERSION}/runtime/init/error", error)

    def _post(self, path: str, error: BaseException) -> None:
        connection = http.client.HTTPConnection(self._host, self._port)
        connection.request("POST", path, body=json.dumps(_error_document(error)).encode(),
                           headers={ERROR_TYPE: _error_type(error), "Content-Type": "application/json"})
        connection.getresponse().read()
        connection.close()


def _error_type(error: BaseException) -> str:
    return f"Runtime.{type(error).__name__}"


def _error_document(error: BaseException) -> dict:
    """Lambda's error shape: errorMessage, errorType, stackTrace."""
    return {"errorMessage": str(error), "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__)}


def _trailers(error: BaseException, request_id: str = "") -> bytes:
    """The error trailers of an answer that broke off: the error's type and where to read about it, never its
    text or stack (an exception's text may hold a host, a port or a path; the log has the whole of it)."""
    document = {"errorMessage": f"the answer broke off ({type(error).__name__}); the function's log has the "
                                f"details under request {request_id}", "errorType": type(error).__name__}
    body = base64.b64encode(json.dumps(document).encode()).decode("ascii")
    return f"{ERROR_TYPE}: {_error_type(error)}\r\n{ERROR_BODY}: {body}\r\n".encode()


# ------------------------------------------------------------------------------------------------------- logging


class _RequestId(logging.Filter):
    """Puts the invocation's request id on every record (the managed runtime's requestId field)."""

    request_id: Optional[str] = None

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


REQUEST_ID = _RequestId()


def configure_logging(environ=os.environ) -> None:
    """The root logger writes to stdout (Lambda sends it to the function's log group): Lambda's JSON format when
    the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT), at its application log level (AWS_LAMBDA_LOG_LEVEL)."""
    from model_api.log_json import LambdaJsonFormatter

    sys.stdout.reconfigure(line_buffering=True)
    output = logging.StreamHandler(sys.stdout)
    output.addFilter(REQUEST_ID)
    if environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        output.setFormatter(LambdaJsonFormatter())
    else:
        output.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(aws_request_id)s\t%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [output]
    level = environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    root.setLevel({"TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(level, level))


def load_handler(name: str) -> Callable:
    module, _, function = name.rpartition(".")
    return getattr(importlib.import_module(module), function)


def serve(api: RuntimeApi, handler: Callable, invocations: Optional[int] = None, environ=os.environ) -> None:
    """Answer invocations, forever (or `invocations` of them: the tests)."""
    served = 0
    while invocations is None or served < invocations:
        served += 1
        raw, headers = api.next()
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        REQUEST_ID.request_id = request_id
        trace = headers.get("lambda-runtime-trace-id")
        if trace:
            environ["_X_AMZN_TRACE_ID"] = trace
        else:
            environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            chunks = handler(json.loads(raw), Context(request_id, headers, environ))
        except Exception as error:  # before any byte: Lambda's invocation error
            logging.getLogger("stream_runtime").exception("the handler failed")
            api.error(request_id, error)
            continue
        failure = api.stream(request_id, chunks)
        if failure is not None:
            logging.getLogger("stream_runtime").error("the answer broke off", exc_info=failure)


def main() -> None:
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        configure_logging()
        handler = load_handler(os.environ.get("_HANDLER", "stream_handler.handler"))
    except Exception as error:
        traceback.print_exc()
        api.init_error(error)
        sys.exit(1)
    serve(api, handler)


if __name__ == "__main__":
    main()
