"""Where the Lambda source lives, and what of it is never shipped.

The contract package (lambda/model_api) is installed into the venv (editable, lambda/pyproject.toml), so the CDK
app, ops and local mode import it by name, as the Lambda runtime does beside handler.py: the same schema, limits and
error shapes everywhere, each defined once.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = ROOT / "lambda"
MODELS_DIR = ROOT / "models"
# Never shipped in an asset: caches, the sidecars mutation testing (make mutation) writes beside each file, and the
# package's install metadata (the runtime imports model_api as a folder beside handler.py).
ASSET_EXCLUDE = ["__pycache__", "**/__pycache__", "*.pyc", "*.pyo", "*.py.meta", "*.py.spans", "pyproject.toml",
                 "*.egg-info", "**/*.egg-info", ".mypy_cache"]
