"""The local mode most local tests share: one process for the whole session (each start costs ~10 s)."""

from __future__ import annotations

import json

import pytest
from local_rig import SETTINGS, TEXT_BATCH, TEXT_MODELS, TEXT_STREAMING, LocalProcess

# Clients get REQUEST_TIMEOUT seconds to send a request (default 10; short here for the framing tests).
REQUEST_TIMEOUT = 1.0


@pytest.fixture(scope="session")
def local(tmp_path_factory):
    """Local mode allowing 64 px images (-c min_size=64), so the tiny model answers in milliseconds."""
    tmp_path = tmp_path_factory.mktemp("local")
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = LocalProcess(tmp_path, "--api-key", "test-key", *SETTINGS, "--request-timeout",
                           str(REQUEST_TIMEOUT), env={"TMPDIR": str(temp)})
    banner = process.wait_until_serving()
    info = json.loads((tmp_path / "ready.json").read_text())
    info["banner"] = banner
    info["process"] = process
    info["ready_file"] = tmp_path / "ready.json"
    yield info
    assert process.stop() == 0, "".join(process.stderr[-20:])
    assert not (tmp_path / "ready.json").exists()  # removed on exit: make batch LOCAL=1 then says it is not running
    output = "".join(process.stdout + process.stderr)
    assert "local: stopping" in output
    # No traceback (clients hanging up, broken framing), and no presigned URL printed anywhere.
    assert "Traceback" not in output and "X-Amz-Signature" not in output, output[-3000:]
    # A run leaves no temporary files behind (the CDK's jsii runtime, which unpacks into a temp folder, is not
    # even started: settings need no aws_cdk).
    assert list(temp.iterdir()) == []


@pytest.fixture(scope="session")
def local_text(tmp_path_factory):
    """Local mode with every text kind (shared by the text-model, streaming and client-library tests): GPT-2 on TGI
    and the chat model stream, GPT-2 on CPU does not."""
    tmp_path = tmp_path_factory.mktemp("local-text")
    # The JumpStart model is an existing endpoint: not served locally, its routes answer 503.
    # Hosting modes as deployed: MiniLM serverless, GPT-2 on CPU autoscaled; local mode serves both the same way.
    process = LocalProcess(tmp_path, "--api-key", "k", "-c", f"models={TEXT_MODELS}",
                           "-c", "jumpstart-stable-diffusion.source=endpoint:js-sd",
                           "-c", "minilm-embeddings.hosting=serverless", "-c", "minilm-embeddings.memory_mb=2048",
                           "-c", "gpt2-cpu.max_instances=3", *TEXT_BATCH, *TEXT_STREAMING)
    banner = process.wait_until_serving()
    info = json.loads((tmp_path / "ready.json").read_text())
    info["banner"] = banner
    info["ready_file"] = tmp_path / "ready.json"
    yield info
    assert process.stop() == 0, "".join(process.stderr[-20:])
