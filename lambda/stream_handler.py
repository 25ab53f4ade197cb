"""Lambda entry of a model deployed with streaming=true: the same app as lambda/handler.py (model_api.app.ModelApp),
whose stream(event, context) answers as API Gateway's streamed proxy answer (model_api.streamed), which the
integration passes on as it comes (responseTransferMode STREAM; stacks/rest_api.py). lambda/stream_runtime.py calls
the handler and writes what it yields to Lambda's Runtime API in streaming mode."""

from __future__ import annotations

import os

from model_api.app import ModelApp, configure_logging

configure_logging(os.environ)
app = ModelApp(os.environ)
handler = app.stream
