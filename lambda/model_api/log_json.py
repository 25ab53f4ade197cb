"""Log lines as Lambda's JSON log format writes them: the streaming runtime's (lambda/stream_runtime.py, which has no
managed runtime to write them), local mode's console and the tests: what a user sees locally is what CloudWatch
holds.

The deployed format is the Python runtime's (aws-lambda-python-runtime-interface-client, lambda_runtime_log_utils
JsonFormatter): timestamp (UTC, milliseconds, Z), level, message, logger, requestId, and for an exception errorType,
errorMessage, stackTrace and location; then every field a record carries beyond the standard ones (`extra=`) at the
root; fields that are None are left out. Written here from that description; the runtime itself is not a dependency.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import datetime, timezone

# The attributes every LogRecord has (and the runtime's own): not `extra` fields.
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "aws_request_id",
                                                                       "tenant_id", "_frame_type"}


class LambdaJsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            + "Z",
            "level": logging.getLevelName(min(50, max(0, record.levelno)) // 10 * 10),
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", None),
        }
        if record.exc_info:
            kind, error, tb = record.exc_info
            line.update(errorType=kind.__name__ if kind is not None else None, errorMessage=str(error), stackTrace=traceback.format_tb(tb),
                        location=f"{record.pathname}:{record.funcName}:{record.lineno}")
        line.update((k, v) for k, v in vars(record).items() if k not in STANDARD and k not in line)
        return json.dumps({k: v for k, v in line.items() if v is not None}, ensure_ascii=False, default=str)
