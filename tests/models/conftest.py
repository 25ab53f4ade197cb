import importlib.util
import shutil
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SD_CODE = ROOT / "models" / "stable_diffusion" / "code"


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> Path:
    """A random-weight Stable Diffusion pipeline, built offline once per session (~3 s)."""
    from local.tiny_models import build_tiny_stable_diffusion

    return build_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def sd_inference():
    """models/stable_diffusion/code/inference.py, imported by path."""
    spec = importlib.util.spec_from_file_location(f"sd_inference_{uuid.uuid4().hex}", SD_CODE / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sd_artifact_dir(tiny_sd_dir, tmp_path_factory) -> Path:
    """Weights plus code/, the layout of a model.tar.gz the container unpacks into /opt/ml/model."""
    folder = tmp_path_factory.mktemp("sd-artifact")
    shutil.copytree(tiny_sd_dir, folder, dirs_exist_ok=True)
    shutil.copytree(SD_CODE, folder / "code")
    return folder
