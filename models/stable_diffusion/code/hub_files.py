"""Download only the files a diffusers pipeline needs from a Hugging Face Hub repository.

The inference toolkit's own HF_MODEL_ID download keeps every file its framework filter lets through: for a Stable
Diffusion 2.x repository that is the fp32 and fp16 copies (safetensors and .bin) of every component plus the
multi-GB single-file checkpoints at the root, about 25 GB, written to the container's root volume. A pipeline
needs one copy of each component: `model_index.json`, each component folder's configuration and tokenizer files,
and one set of weights per component (the fp16 safetensors variant on GPU). This module picks those files from the
repository's listing (pure: `select_files`) and fetches them (`download`), at a pinned commit when one is given.

Used by inference.py's model_fn on SageMaker and in local mode (`--model-id`), and tested on a recorded listing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Optional

# Files of a component folder that are not weights: configurations, tokenizers, processors.
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".tiktoken")
WEIGHT_FORMATS = ("safetensors", "bin")
VARIANTS = ("fp16", "bf16")
# model.safetensors, diffusion_pytorch_model.fp16.safetensors, model-00001-of-00002.safetensors,
# model.fp16-00001-of-00002.safetensors, and their shard indexes (model.safetensors.index.json,
# diffusion_pytorch_model.safetensors.index.fp16.json).
_WEIGHT = re.compile(r"^[^.]+?(?:\.(?P<variant>[a-z0-9]+))?(?:-\d{5}-of-\d{5})?\.(?P<format>safetensors|bin)$")
_INDEX = re.compile(r"^[^.]+\.(?P<format>safetensors|bin)\.index(?:\.(?P<variant>[a-z0-9]+))?\.json$")
COMPLETE_MARKER = ".download-complete"


def component_folders(model_index: Mapping) -> list[str]:
    """Folders of the pipeline's components: model_index.json entries [library, class] with both set, named as a
    top-level folder (diffusers loads each component from <name>/)."""
    return sorted(name for name, value in model_index.items()
                  if not name.startswith("_") and "/" not in name and isinstance(value, list) and len(value) == 2
                  and all(value))


def _weight_group(name: str) -> Optional[tuple[Optional[str], str]]:
    """(variant, format) of a weight or shard-index file name, None for anything else."""
    match = _WEIGHT.match(name) or _INDEX.match(name)
    if not match:
        return None
    variant = match["variant"]
    return (variant if variant in VARIANTS else None), match["format"]


def _preference(fp16: bool) -> list[tuple[Optional[str], str]]:
    if fp16:
        return [("fp16", "safetensors"), (None, "safetensors"), ("fp16", "bin"), (None, "bin")]
    return [(None, "safetensors"), (None, "bin"), ("fp16", "safetensors"), ("fp16", "bin")]


# Pickle (.bin) weights run code of the file's author when loaded (torch.load unpickles; the Hugging Face Hub's
# "Pickle Scanning" page: "pickle is not secure"), safetensors hold tensors only. Refused unless the deployer says
# the repository is trusted (<model>.allow_pickle_weights, ALLOW_PICKLE_WEIGHTS in the container).
PICKLE_FORMATS = ("bin",)


def pickle_allowed(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("ALLOW_PICKLE_WEIGHTS", "").lower() == "true"


def select_files(files: Mapping[str, int], model_index: Mapping, fp16: bool,
                 allow_pickle: bool = False) -> tuple[list[str], Optional[str]]:
    """The paths to download and the variant to load them with ("fp16" or None).

    files: path -> size of every file in the repository; model_index: its model_index.json. The fp16 variant is
    used only when every component that has weights has it, so the pipeline loads with one `variant`. Pickle
    (.bin) weights only with allow_pickle: without it a component with none but them is refused by name."""
    if not allow_pickle:
        def weight_format(path: str) -> Optional[str]:
            group = _weight_group(path.rpartition("/")[2])
            return group[1] if group else None

        formats: dict[str, set] = {}
        for path in files:
            if weight_format(path):
                formats.setdefault(path.rpartition("/")[0], set()).add(weight_format(path))
        pickled = [f for f in component_folders(model_index)
                   if formats.get(f) and not formats[f] - set(PICKLE_FORMATS)]
        if pickled:
            raise ValueError(f"components with only pickle (.bin) weights: {', '.join(pickled)}; pickle files can run "
                             "code when loaded: use a repository (or revision) with safetensors, or set "
                             "allow_pickle_weights=true for this model if you trust it")
        files = {p: size for p, size in files.items() if weight_format(p) not in PICKLE_FORMATS}
    formats = " or ".join(WEIGHT_FORMATS if allow_pickle else [f for f in WEIGHT_FORMATS if f not in PICKLE_FORMATS])
    folders = component_folders(model_index)
    by_folder: dict[str, dict[tuple, list[str]]] = {f: {} for f in folders}
    configs: list[str] = ["model_index.json"]
    for path in files:
        folder, _, name = path.rpartition("/")
        if folder not in by_folder:  # top-level files other than model_index.json, other folders, subfolders
            continue
        group = _weight_group(name)
        if group is not None:
            by_folder[folder].setdefault(group, []).append(path)
        elif name.endswith(CONFIG_SUFFIXES):
            configs.append(path)
    weighted = {f: groups for f, groups in by_folder.items() if groups}
    missing = [f for f in folders if f not in weighted and _needs_weights(f, model_index)]
    # One variant for the whole pipeline: the preferred one if every component has it, else the other.
    for variant in (("fp16", None) if fp16 else (None, "fp16")):
        if all(any(g[0] == variant for g in groups) for groups in weighted.values()):
            break
    else:
        raise ValueError("the repository has neither one plain nor one fp16 set of weights for every component "
                         f"({', '.join(sorted(weighted))}) in {formats}")
    if missing:
        raise ValueError(f"components without weights in {formats}: {', '.join(missing)}")
    preference = [p for p in _preference(fp16) if p[0] == variant]
    chosen: list[str] = []
    for folder, groups in sorted(weighted.items()):
        chosen += next(groups[p] for p in preference if p in groups)
    return sorted(set(configs) | set(chosen)), variant


# Components that are models (weights expected) rather than tokenizers, schedulers or processors.
_WEIGHTLESS = ("Tokenizer", "TokenizerFast", "Scheduler", "ImageProcessor", "FeatureExtractor", "Processor")


def _needs_weights(folder: str, model_index: Mapping) -> bool:
    return not str(model_index[folder][1]).endswith(_WEIGHTLESS)


def total_bytes(files: Mapping[str, int], paths: Iterable[str]) -> int:
    return sum(files[p] for p in paths)


class HubRepository:
    """The Hugging Face Hub as select_files and download need it (huggingface_hub, imported only when used)."""

    def __init__(self, token: Optional[str] = None):
        self.token = token

    def listing(self, repo_id: str, revision: Optional[str]) -> tuple[str, dict[str, int]]:
        """(commit sha, path -> size) of a repository at a revision."""
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True, token=self.token)
        return info.sha, {s.rfilename: int(s.size or 0) for s in info.siblings}

    def fetch(self, repo_id: str, sha: str, paths: list[str], destination: Path) -> None:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, revision=sha, allow_patterns=paths, local_dir=str(destination), token=self.token)

    def read_json(self, repo_id: str, sha: str, path: str) -> dict:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(repo_id, path, revision=sha, token=self.token)).read_text())


def download(repo_id: str, revision: Optional[str], root: Path, fp16: bool,
             hub: Optional[HubRepository] = None, log=print, allow_pickle: bool = False) -> tuple[Path, Optional[str]]:
    """Fetch the files the pipeline needs into root/<org>--<name>/<sha> (once: a marker records a finished
    download, so a restarted worker loads at once). Returns (folder, variant)."""
    hub = hub or HubRepository()
    sha, files = hub.listing(repo_id, revision)
    folder = Path(root) / repo_id.replace("/", "--") / sha
    marker = folder / COMPLETE_MARKER
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("fp16") == fp16:
            return folder, done.get("variant")
    model_index = hub.read_json(repo_id, sha, "model_index.json")
    paths, variant = select_files(files, model_index, fp16, allow_pickle)
    log(json.dumps({"event": "model_download", "repo": repo_id, "revision": sha, "files": len(paths),
                    "bytes": total_bytes(files, paths), "repository_bytes": sum(files.values()),
                    "variant": variant, "to": str(folder)}))
    folder.mkdir(parents=True, exist_ok=True)
    hub.fetch(repo_id, sha, paths, folder)
    missing = [p for p in paths if not (folder / p).is_file()]
    if missing:
        raise RuntimeError(f"download of {repo_id}@{sha} is missing {missing[:5]}")
    marker.write_text(json.dumps({"files": paths, "variant": variant, "fp16": fp16}))
    return folder, variant


def hub_token(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The Hub token from the Secrets Manager secret named by HF_TOKEN_SECRET_ID (read with the endpoint's execution
    role, so the token never sits in the model's environment), or None. A JSON secret holds it under
    HF_TOKEN_SECRET_FIELD (the hub_token_field setting), else under HF_TOKEN or token."""
    secret_id = environ.get("HF_TOKEN_SECRET_ID")
    if not secret_id:
        return None
    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"].strip()
    if value.startswith("{"):
        data = json.loads(value)
        field = environ.get("HF_TOKEN_SECRET_FIELD")
        value = (data.get(field) if field else data.get("HF_TOKEN") or data.get("token")) or ""
    if not value:
        raise RuntimeError(f"secret {secret_id} holds no Hub token")
    return value
