"""Serve a model folder in-process through the real SageMaker Hugging Face inference toolkit.

The deployed container runs `HuggingFaceHandlerService` inside multi-model-server; here the same service object is
driven directly (initialize, then handle per request), so `code/inference.py` meets exactly the contract it meets
on SageMaker: the same hook lookup, the same content-type handling, the same error codes.
"""

from __future__ import annotations

import importlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from types import SimpleNamespace


def _load_toolkit():
    # Toolkit 2.6.0 imports is_tf_available from transformers, which transformers 5 removed. We never use
    # TensorFlow, so answer the question the toolkit asks before it imports.
    import transformers.file_utils

    if not hasattr(transformers.file_utils, "is_tf_available"):
        transformers.file_utils.is_tf_available = lambda: False
    from mms.service import PredictionException
    from sagemaker_huggingface_inference_toolkit.handler_service import (
        HuggingFaceHandlerService,
    )

    return HuggingFaceHandlerService, PredictionException


class ModelWorker:
    """One long-lived thread that runs a model's every request, in order, as one model-server worker does. Every
    request on the same thread also keeps torch's CPU thread pool warm: OpenMP starts a new pool for each new thread
    that computes, which made a 512x512 image about 30% slower when each HTTP connection's thread ran the model
    itself (measured: 3.6 s against 2.8 s on 2 cores)."""

    def __init__(self, deadline_seconds: float | None = None):
        """deadline_seconds: how long a caller waits for its answer (local mode's --timeout, plus the second the
        deployed container gets past its Lambda); a request still queued when its caller stops waiting never
        runs, so an abandoned request does not hold up the ones behind it. None: callers wait as long as it takes."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-worker")
        self.deadline_seconds = deadline_seconds

    def run(self, function, *args):
        future = self._executor.submit(function, *args)
        try:
            return future.result(timeout=self.deadline_seconds)
        except FutureTimeout:
            future.cancel()  # not started yet: it never will; started: the model's own deadline stops it
            raise ModelError(504, f"the model did not answer within {self.deadline_seconds:g} s") from None

    def submit(self, function, *args):
        """Queue function(*args) on the model's thread without waiting for it (a streamed answer is read while it
        runs)."""
        return self._executor.submit(function, *args)


class ModelError(Exception):
    """The container answered with an error status (what SageMaker reports as ModelError)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Context:
    """The slice of multi-model-server's Context that the toolkit uses."""

    def __init__(self, model_dir: str):
        self.system_properties = {"model_dir": model_dir, "batch_size": 1, "gpu_id": 0}
        self.request_processor = [SimpleNamespace(get_request_properties=lambda: self._request)]
        self.metrics = SimpleNamespace(add_time=lambda *args, **kwargs: None)
        self._request: dict = {}
        self.response_content_type = None

    def set_response_content_type(self, _index: int, content_type: str) -> None:
        self.response_content_type = content_type


def _set_env(values: dict) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class ToolkitModel:
    """One model folder (weights and/or code/inference.py) loaded once, invoked like /invocations."""

    def __init__(self, model_dir: Path, program: str = "inference.py", task: str | None = None,
                 environment: dict | None = None, deadline_seconds: float | None = None):
        """task: HF_TASK for a model served without code (the toolkit's own pipeline); environment: the container
        environment the model loads with (e.g. MODEL_HUB_ID for code that downloads its weights); deadline_seconds:
        ModelWorker's."""
        service_class, self._prediction_exception = _load_toolkit()
        self.model_dir = str(model_dir)
        module, code_dir = Path(program).stem, str(Path(model_dir) / "code")
        overrides = {"SAGEMAKER_PROGRAM": program, "HF_TASK": task, **(environment or {})}
        saved = {name: os.environ.get(name) for name in overrides}
        # The toolkit imports the user module by name from a code/ folder it puts on sys.path. Several models live
        # in one process here, so no other model's module or folder may be found instead of this one's.
        sys.modules.pop(module, None)
        importlib.invalidate_caches()
        try:
            _set_env(overrides)
            self._service = service_class()
            self._context = _Context(self.model_dir)
            self._service.initialize(self._context)
        finally:
            _set_env(saved)
            sys.modules.pop(module, None)
            while code_dir in sys.path:
                sys.path.remove(code_dir)
        # One request at a time, as one model-server worker does (SAGEMAKER_MODEL_SERVER_WORKERS=1).
        self._worker = ModelWorker(deadline_seconds)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        return self._worker.run(self._invoke, body, content_type, accept)

    def _invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        self._context._request = {"Content-Type": content_type, "Accept": accept}
        try:
            output, = self._service.handle([{"body": body}], self._context)
        except self._prediction_exception as exc:
            raise ModelError(exc.error_code, exc.message) from exc
        content = output.encode("utf-8") if isinstance(output, str) else bytes(output)
        return content, self._context.response_content_type or accept
