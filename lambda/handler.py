"""Lambda entry of the Model API: one function per model. Builds the model's app once per container from the
function's environment (model_api.app.ModelApp: its routes, pipelines and request log) and hands Lambda its
handle(event, context), which routes an API Gateway REST proxy event to its pipeline and writes one structured log
line per request. Everything that reaches AWS is created here, once per container."""

from __future__ import annotations

import os

from model_api.app import ModelApp, configure_logging

configure_logging(os.environ)
app = ModelApp(os.environ)
handler = app.handle
