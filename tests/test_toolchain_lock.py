"""The deploy toolchain is locked with hashes: requirements.lock (made by `make lock`, pip-compile
--generate-hashes) pins requirements.txt and everything it pulls in, each with the sha256 of its files, and
bin/setup installs it with --require-hashes, so a changed file on the index fails the install. Here: the lock
follows requirements.txt, every entry carries hashes, and the venv runs exactly the locked versions (a test or
local-mode package that moved one would fail this)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)")


def pins(path: Path) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for line in path.read_text().splitlines() if (m := PIN.match(line))}


def entries(path: Path) -> dict[str, list[str]]:
    """package -> the hashes of its entry in a pip-compile lock."""
    out: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if (m := PIN.match(line)):
            current = m.group(1).lower()
            out[current] = []
        elif current and "--hash=sha256:" in line:
            out[current].append(line.split("--hash=sha256:")[1].strip(" \\"))
        elif not line.startswith(" "):
            current = None
    return out


def test_the_lock_pins_what_requirements_txt_pins():
    wanted, locked = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements.lock")
    assert wanted and {name: locked.get(name) for name in wanted} == wanted, "run make lock"


def test_every_locked_package_has_hashes():
    found = entries(ROOT / "requirements.lock")
    assert len(found) >= len(pins(ROOT / "requirements.txt"))
    assert {name for name, hashes in found.items() if not hashes or not all(re.fullmatch(r"[0-9a-f]{64}", h)
                                                                           for h in hashes)} == set()


def test_the_installed_toolchain_is_the_locked_one():
    moved = {name: (wanted, version(name)) for name, wanted in pins(ROOT / "requirements.lock").items()
             if version(name) != wanted}
    assert moved == {}, "a package of the deploy toolchain differs from requirements.lock (name: (locked, installed))"


def test_setup_installs_the_lock_with_hashes_before_anything_else():
    setup = (ROOT / "bin" / "setup").read_text()
    assert '--require-hashes -r requirements.lock' in setup
    assert setup.index("requirements.lock\n") < setup.index("-r requirements-dev.txt")
    assert "requirements.lock" in setup.split("inputs=(")[1].split(")")[0]  # a new lock reinstalls
