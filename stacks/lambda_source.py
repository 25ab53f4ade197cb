"""The Lambda source folder, and importing its modules from the CDK app.

`lambda` is a Python keyword, so the folder cannot be imported as a package: its own package (model_api) is put on
sys.path instead, which is also how the Lambda runtime sees it. The CDK app uses the same schema, limits and error
shapes as the handler through this, so each is defined once.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = ROOT / "lambda"
MODELS_DIR = ROOT / "models"
# Never shipped in an asset: caches, and the sidecars mutation testing (make mutation) writes beside each file.
ASSET_EXCLUDE = ["__pycache__", "**/__pycache__", "*.pyc", "*.pyo", "*.py.meta", "*.py.spans"]


def load_lambda_module(name: str):
    if str(LAMBDA_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDA_DIR))
    return importlib.import_module(name)
