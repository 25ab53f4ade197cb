"""Build a model.tar.gz that carries the weights (the production path: nothing is downloaded from a third party
when an instance starts, and the weights are the ones you tested).

    python -m ops.artifact --weights DIR [--code models/stable_diffusion/code] --out model.tar.gz

DIR is a local model folder (for Stable Diffusion a diffusers pipeline: model_index.json and its component
folders). The archive holds DIR's files at its root and the code folder as code/, the layout SageMaker unpacks
into /opt/ml/model. Deterministic like the synth-time archives: sorted entries, fixed times and owners. Streams
file by file, so multi-GB weights never sit in memory. Upload it next to the stack's region and point the model
at it: -c stable-diffusion.source=s3://<bucket>/<key>/model.tar.gz -c stable-diffusion.code=none.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tarfile
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".git", ".cache", ".ipynb_checkpoints"}


def entries(weights: Path, code: Path | None) -> list[tuple[str, Path]]:
    found = []
    for root, prefix in ((weights, ""), (code, "code/")):
        if root is None:
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not (prefix == "" and d == "code"))
            for name in names:
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(folder) / name
                found.append((prefix + path.relative_to(root).as_posix(), path))
    return sorted(found)


def build(weights: Path, out: Path, code: Path | None = None) -> list[str]:
    weights = Path(weights)
    if not weights.is_dir():
        raise SystemExit(f"artifact: {weights} is not a folder")
    if code is not None and not (Path(code) / "inference.py").is_file():
        raise SystemExit(f"artifact: {code} has no inference.py")
    names = []
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for name, path in entries(weights, Path(code) if code else None):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = path.stat().st_size, 0, 0o644, 0, 0
            info.uname = info.gname = ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
            names.append(name)
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.artifact", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="local model folder")
    parser.add_argument("--code", type=Path, help="folder with inference.py to add as code/ (optional)")
    parser.add_argument("--out", type=Path, default=Path("model.tar.gz"))
    args = parser.parse_args(argv)
    names = build(args.weights, args.out, args.code)
    print(f"artifact: {args.out} ({args.out.stat().st_size:,} bytes, {len(names)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
