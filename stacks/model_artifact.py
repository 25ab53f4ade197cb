"""A model's `code/` folder packaged into a deterministic model.tar.gz and uploaded as a CDK file asset.

Deterministic: entries sorted, times, owners and modes fixed, gzip header without name or time. The same sources
give the same bytes, so the same asset hash, so `cdk deploy` does not replace the model when nothing changed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Optional

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from deployment.lambda_source import ROOT

BUILD_DIR = ROOT / ".build" / "models"
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
# .meta/.spans: the sidecars mutation testing (make mutation) writes beside each file it mutates.
_SKIP_SUFFIXES = (".pyc", ".pyo", ".py.meta", ".py.spans")


def archive_bytes(code_dir: Path) -> bytes:
    """model.tar.gz bytes holding code_dir as `code/`: the layout the SageMaker inference toolkits look for."""
    code_dir = Path(code_dir)
    if not (code_dir / "inference.py").is_file():
        raise ValueError(f"{code_dir} has no inference.py")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in _files(code_dir):
            data = path.read_bytes()
            info = tarfile.TarInfo("code/" + path.relative_to(code_dir).as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _files(code_dir: Path) -> list[Path]:
    found = []
    for folder, dirs, names in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        found += [Path(folder) / n for n in names if not n.endswith(_SKIP_SUFFIXES)]
    return sorted(found, key=lambda p: p.relative_to(code_dir).as_posix())


def build_archive(code_dir: Path, build_dir: Path = BUILD_DIR) -> Path:
    """Write the archive under build_dir/<content hash>/model.tar.gz (untouched if it already exists)."""
    data = archive_bytes(code_dir)
    target = Path(build_dir) / hashlib.sha256(data).hexdigest()[:16] / "model.tar.gz"
    if not target.exists() or target.read_bytes() != data:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return target


class ModelArtifact(Construct):
    """Packages `code_dir` at synth time and uploads it as a file asset.

    Attributes: `archive_path` (local file), `asset`, `s3_url` (for ModelDataUrl), `object_arn` (the one object
    a model's execution role may read).
    """

    def __init__(self, scope: Construct, construct_id: str, *, code_dir: Path, build_dir: Optional[Path] = None):
        super().__init__(scope, construct_id)
        self.archive_path = build_archive(code_dir, build_dir or BUILD_DIR)
        self.asset = s3_assets.Asset(self, "Archive", path=str(self.archive_path))
        self.s3_url = self.asset.s3_object_url
        self.object_arn = self.asset.bucket.arn_for_objects(self.asset.s3_object_key)
