"""The model archive: deterministic bytes, the toolkit's layout, nothing stray."""

import io
import tarfile

import pytest

from deployment.model_catalog import PRESETS
from stacks.model_artifact import archive_bytes, build_archive

STABLE_DIFFUSION_CODE = PRESETS["stable-diffusion"].code_dir


def test_same_sources_give_the_same_bytes(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text("def model_fn(d):\n    return d\n")
    (code / "requirements.txt").write_text("pillow\n")
    first = archive_bytes(code)
    # Touch times, add caches and change modes: none of it may change the archive.
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"junk")
    (code / "inference.py").chmod(0o755)
    import os
    os.utime(code / "inference.py", (1, 1))
    assert archive_bytes(code) == first
    (code / "inference.py").write_text("def model_fn(d):\n    return None\n")
    assert archive_bytes(code) != first


def test_layout_is_code_folder_with_inference_py():
    data = archive_bytes(STABLE_DIFFUSION_CODE)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["code/hub_files.py", "code/inference.py"]
        assert all(m.mtime == 0 and m.uid == 0 and m.mode == 0o644 for m in members)
        assert tar.extractfile("code/inference.py").read() == (STABLE_DIFFUSION_CODE / "inference.py").read_bytes()


def test_build_writes_once_per_content(tmp_path):
    first = build_archive(STABLE_DIFFUSION_CODE, tmp_path)
    again = build_archive(STABLE_DIFFUSION_CODE, tmp_path)
    assert first == again and first.name == "model.tar.gz"
    assert first.read_bytes() == archive_bytes(STABLE_DIFFUSION_CODE)


def test_code_without_inference_py_is_refused(tmp_path):
    with pytest.raises(ValueError, match="has no inference.py"):
        archive_bytes(tmp_path)


def test_members_are_ordered_by_their_path_in_the_archive(tmp_path):
    """By the archive path as text ("a.b" before "a/b"), not by Path order, which splits at "/" first."""
    code = tmp_path / "code"
    (code / "a").mkdir(parents=True)
    (code / "inference.py").write_text("")
    (code / "a" / "b").write_text("")
    (code / "a.b").write_text("")
    with tarfile.open(fileobj=io.BytesIO(archive_bytes(code)), mode="r:gz") as tar:
        assert tar.getnames() == ["code/a.b", "code/a/b", "code/inference.py"]


def test_a_damaged_archive_on_disk_is_written_again(tmp_path):
    first = build_archive(STABLE_DIFFUSION_CODE, tmp_path)
    first.write_bytes(b"truncated")
    assert build_archive(STABLE_DIFFUSION_CODE, tmp_path).read_bytes() == archive_bytes(STABLE_DIFFUSION_CODE)


def test_a_build_folder_that_does_not_exist_yet_is_made_with_its_parents(tmp_path):
    built = build_archive(STABLE_DIFFUSION_CODE, tmp_path / "fresh" / "build")  # a clean clone has no .build/
    assert built.is_file() and built.read_bytes() == archive_bytes(STABLE_DIFFUSION_CODE)
