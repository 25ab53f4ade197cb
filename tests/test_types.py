"""The contract package (lambda/model_api) type-checks: every caller (the Lambda, the stack, ops, local mode) imports
it, so mypy runs in CI too, not only in make lint."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_contract_package_type_checks():
    from mypy import api

    out, err, status = api.run(["--config-file", str(ROOT / "mypy.ini"), "--cache-dir", str(ROOT / ".mypy_cache")])
    assert status == 0, out + err
