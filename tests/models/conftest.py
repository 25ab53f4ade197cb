import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SD_CODE = ROOT / "models" / "stable_diffusion" / "code"
CHAT_CODE = ROOT / "models" / "chat_embeddings" / "code"


def load_by_path(path: Path):
    # A fresh module object each call, named after its path (models.<kind>.code.inference): readable tracebacks, and
    # the name mutation testing (make mutation) gives the file.
    spec = importlib.util.spec_from_file_location(".".join(path.relative_to(ROOT).with_suffix("").parts), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    """A random-weight Stable Diffusion pipeline, built offline once per session (~3 s)."""
    from local.tiny_models import build_tiny_stable_diffusion

    return build_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def sd_inference():
    """models/stable_diffusion/code/inference.py, imported by path."""
    return load_by_path(SD_CODE / "inference.py")


def artifact_dir(weights: Path, code: Path, folder: Path) -> Path:
    """Weights plus code/, the layout of a model.tar.gz the container unpacks into /opt/ml/model."""
    shutil.copytree(weights, folder, dirs_exist_ok=True)
    shutil.copytree(code, folder / "code")
    return folder


@pytest.fixture(scope="session")
def sd_artifact_dir(tiny_sd_dir, tmp_path_factory) -> Path:
    return artifact_dir(tiny_sd_dir, SD_CODE, tmp_path_factory.mktemp("sd-artifact"))


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A random-weight GPT-2 style causal LM with a chat template, built offline (~1 s)."""
    from local.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def chat_inference():
    return load_by_path(CHAT_CODE / "inference.py")


@pytest.fixture(scope="session")
def chat_artifact_dir(tiny_lm_dir, tmp_path_factory) -> Path:
    return artifact_dir(tiny_lm_dir, CHAT_CODE, tmp_path_factory.mktemp("chat-artifact"))
