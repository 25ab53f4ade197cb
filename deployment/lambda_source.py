"""Where the Lambda source lives, and what of it is never shipped.

The contract package (lambda/model_api) is installed into the venv (editable, lambda/pyproject.toml), so the CDK
app, ops and local mode import it by name, as the Lambda runtime does beside handler.py: the same schema, limits and
error shapes everywhere, each defined once.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = ROOT / "lambda"
MODELS_DIR = ROOT / "models"
# Never shipped in an asset: caches, the sidecars mutation testing (make mutation) writes beside each file, and the
# package's install metadata (the runtime imports model_api as a folder beside handler.py).
ASSET_EXCLUDE = ["__pycache__", "**/__pycache__", "*.pyc", "*.pyo", "*.py.meta", "*.py.spans", "pyproject.toml",
                 "*.egg-info", "**/*.egg-info", ".mypy_cache"]
# The exec wrapper a streaming function starts through (AWS_LAMBDA_EXEC_WRAPPER): Lambda runs it as a program, so
# it must be executable in the asset (the zip keeps each file's mode as the checkout has it; a Windows checkout or
# one with core.fileMode=false has none, and the function would fail at every cold start).
STREAM_WRAPPER = LAMBDA_DIR / "stream_bootstrap"


def not_executable(path: Path) -> Optional[str]:
    """A problem sentence when `path` is missing or not executable by its owner, group and others, else None."""
    if not path.is_file():
        return f"{path.name} is missing from {path.parent}"
    if stat.S_IMODE(path.stat().st_mode) & 0o111 != 0o111:
        return (f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} is not executable, and Lambda runs "
                "it as a program (the streaming runtime's AWS_LAMBDA_EXEC_WRAPPER): run `chmod +x` on it (or `git "
                "update-index --chmod=+x` and check out again); a Windows checkout cannot keep the bit, so deploy a "
                "streaming model from Linux, macOS or WSL")
    return None
