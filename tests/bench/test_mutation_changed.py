"""bench/mutation.py changed: the mutants of exactly the functions a change touched, so `make mutation SINCE=<commit>`
scores what changed before a stop."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_mutation", ROOT / "bench" / "mutation.py")
mutation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutation)

SOURCE = '''"""doc"""


def first(x):
    return x + 1


class Box:
    def put(self, x):
        return x

    def take(self):
        return 2


def last():
    return 3
'''


def test_a_mutant_name_points_into_its_function_or_method():
    assert mutation.mutated_function("model_api.text.x_generation_parameters__mutmut_12") == ("generation_parameters",)
    assert mutation.mutated_function("model_api.jobs.xǁS3JobStoreǁput__mutmut_1") == ("S3JobStore", "put")
    assert mutation.mutated_function("x_f__mutmut_2") == ("f",)


def test_each_function_and_method_has_its_lines():
    spans = mutation.function_spans(SOURCE)
    assert spans == {("first",): range(4, 6), ("Box", "put"): range(9, 11), ("Box", "take"): range(12, 14),
                     ("last",): range(16, 18)}


def test_only_the_mutants_of_changed_functions_are_chosen(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    (tmp_path / "mod.py").write_text(SOURCE)
    git("add", "mod.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    (tmp_path / "mod.py").write_text(SOURCE.replace("return 2", "return 20"))
    (tmp_path / "new.py").write_text("def fresh():\n    return 1\n")
    monkeypatch.chdir(tmp_path)
    names = ["mod.x_first__mutmut_1", "mod.xǁBoxǁput__mutmut_1", "mod.xǁBoxǁtake__mutmut_1",
             "mod.xǁBoxǁtake__mutmut_2", "mod.x_last__mutmut_1"]
    data = {"mod.py": SimpleNamespace(exit_code_by_key=dict.fromkeys(names)),
            "new.py": SimpleNamespace(exit_code_by_key={"new.x_fresh__mutmut_1": None})}
    assert mutation.changed_lines("HEAD", "mod.py") == {13}
    # A file git does not know yet is new: all of it changed.
    assert mutation.changed_mutants(data, "HEAD") == ["mod.xǁBoxǁtake__mutmut_1", "mod.xǁBoxǁtake__mutmut_2",
                                                     "new.x_fresh__mutmut_1"]
    assert mutation.changed_mutants(data, "HEAD~1") == sorted(names) + ["new.x_fresh__mutmut_1"]
