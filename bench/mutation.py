"""`make mutation`: mutation testing (mutmut) over the product code; not part of `make test`.

    python bench/mutation.py run [MUTANT ...]     every mutant, or the ones named (mutmut's own `run`)
    python bench/mutation.py sample --size N      a stratified random sample (fixed seed), N mutants
    python bench/mutation.py changed --since REF  the mutants of every function changed since a commit (--size N:
                                                  a sample of them); names in mutants/changed.txt
    python bench/mutation.py report               score per file and every surviving mutant's diff (Markdown)
    python bench/mutation.py show MUTANT          one mutant's diff

The files and the tests are the [mutmut] section of setup.cfg. Run it in a clean checkout (make mutation does
not care where): it works in mutants/ beside the code, and code edited during a run mixes into it. A full run is ~6,700 mutants at ~10-25 s each on 2
cores (each runs the tests that reach the mutated function, in a fresh pytest); the sample gives the score with a
stated margin in a fraction of that (bench/RESULTS.md).

mutmut names each mutant after the module its file would be as a package path (lambda/model_api/text.py ->
lambda.model_api.text) and switches a mutant on only inside a module of that name. Our code is imported the way its
runtime imports it: the Lambda runtime puts lambda/ on sys.path (model_api.text), the inference toolkit loads
code/hub_files.py as hub_files, the bucket emptier is its own Lambda (empty_bucket). This wrapper teaches mutmut those
names before handing over to it.
"""

from __future__ import annotations

import argparse
import ast
import functools
import math
import random
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import mutmut.__main__ as mutmut_main
import mutmut.mutation.file_mutation as file_mutation
import mutmut.runners.harness as harness
import mutmut.utils.format_utils as format_utils
from mutmut.state import state as mutmut_state

# Path prefix -> the module prefix the code is imported under at run time (and in the tests).
RUNTIME_PACKAGES = {
    ("lambda",): (),  # lambda/model_api/x.py -> model_api.x
    ("models", "stable_diffusion", "code", "hub_files"): ("hub_files",),
    ("stacks", "functions", "empty_bucket"): ("empty_bucket",),
}

_path_mutant_name = format_utils.get_mutant_name


def runtime_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
    parts = relative_source_path.with_suffix("").parts
    for prefix, replacement in RUNTIME_PACKAGES.items():
        if parts[: len(prefix)] == prefix:
            parts = replacement + parts[len(prefix):]
            break
    return _path_mutant_name(Path(*parts).with_suffix(".py"), mutant_method_name)


# Our own lru_caches run a function once per process, so mutmut's per-test record of who calls it names only the
# first test, and a mutant in it is then tried against that test alone (a false "survived"). Under mutation testing
# the caches of our modules pass through; everyone else's stay. Installed before any of our modules is imported.
OUR_MODULES = ("model_api.", "stacks.", "deployment.", "hub_files", "models.", "empty_bucket")
_lru_cache = functools.lru_cache


def _lru_cache_except_ours(*args, **kwargs):
    def decorate(function):
        if getattr(function, "__module__", "").startswith(OUR_MODULES):
            return function
        return _lru_cache(**kwargs)(function)

    if len(args) == 1 and callable(args[0]) and not kwargs:  # @lru_cache without arguments
        return decorate(args[0])
    if args:  # lru_cache(128): positional maxsize
        kwargs = {"maxsize": args[0], **kwargs}
    return decorate


functools.lru_cache = _lru_cache_except_ours

# mutmut credits a function to the tests during which it ran: its stats run clears the record after each test. What
# runs while the tests are collected (module-level Action, schema and kind definitions: the registry is built when
# model_api.kinds is imported) ran for no test, and was credited to the first test alone, so its mutants were tried
# against that one test (false survivors that the suite plainly kills). Those functions are credited to every test.
class ImportTimeCalls:
    def __init__(self):
        self.functions: set[str] = set()
        self.tests: list[str] = []

    def pytest_collection_finish(self, session):
        self.functions = set(mutmut_state()._stats)
        mutmut_state()._stats.clear()
        self.tests = [format_utils.strip_prefix(item.nodeid, prefix="mutants/") for item in session.items]

    def pytest_sessionfinish(self, session):
        for function in self.functions:
            mutmut_state().tests_by_mangled_function_name[function].update(self.tests)


_run_stats = harness.PytestRunner.run_stats


def _run_stats_crediting_import_time_calls(self, *, tests):
    plugin, execute = ImportTimeCalls(), self.execute_pytest

    def execute_with_plugin(params, **kwargs):
        return execute(params, **{**kwargs, "plugins": [*kwargs.get("plugins", []), plugin]})

    self.execute_pytest = execute_with_plugin
    try:
        return _run_stats(self, tests=tests)
    finally:
        del self.execute_pytest


harness.PytestRunner.run_stats = _run_stats_crediting_import_time_calls

# Each mutmut module imported the function by name: replace every binding.
format_utils.get_mutant_name = file_mutation.get_mutant_name = mutmut_main.get_mutant_name = runtime_mutant_name


def mutation_data(generate: bool = True) -> dict[str, "mutmut_main.SourceFileMutationData"]:
    """Source file -> its mutants and their exit codes (None: not run yet); generates the mutants if needed (and
    allowed: a report only reads what a run left)."""
    files = list(mutmut_main.walk_mutatable_files())
    if not generate:
        files = [f for f in files if (Path("mutants") / (str(f) + ".meta")).exists()]
    elif not all((Path("mutants") / (str(f) + ".meta")).exists() for f in files):
        Path("mutants").mkdir(exist_ok=True)
        mutmut_main.copy_src_dir()
        mutmut_main.copy_also_copy_files()
        mutmut_main.setup_source_paths()
        mutmut_main.create_mutants(2)
    out = {}
    for path in files:
        data = mutmut_main.SourceFileMutationData(path=path)
        data.load()
        out[str(path)] = data
    return out


def stratified_sample(names_by_file: dict[str, list[str]], size: int, seed: int) -> list[str]:
    """size mutants, each file getting its share of the total (at least one), drawn with a fixed seed."""
    total = sum(len(v) for v in names_by_file.values())
    rng = random.Random(seed)
    picked = []
    for path in sorted(names_by_file):
        names = sorted(names_by_file[path])
        if names:
            picked += rng.sample(names, min(len(names), max(1, round(size * len(names) / total))))
    return picked


def sample(size: int, seed: int, max_children: int | None) -> None:
    data = mutation_data()
    names = stratified_sample({p: list(d.exit_code_by_key) for p, d in data.items()}, size, seed)
    Path("mutants/sample.txt").write_text("\n".join(names) + "\n")
    print(f"{len(names)} mutants sampled (seed {seed}) of {sum(len(d.exit_code_by_key) for d in data.values())}; "
          "names in mutants/sample.txt")
    mutmut_main._run(names, max_children)


def changed_lines(since: str, path: str) -> set[int]:
    """The lines of path (as it is now) that differ from commit `since`: added or changed (git diff, no context)."""
    diff = subprocess.run(["git", "diff", "-U0", since, "--", path], capture_output=True, text=True, check=True)
    lines: set[int] = set()
    for start, count in re.findall(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@", diff.stdout, re.M):
        lines.update(range(int(start), int(start) + int(count or 1)))
    if not diff.stdout and subprocess.run(["git", "ls-files", "--error-unmatch", path],
                                          capture_output=True).returncode:
        lines.update(range(1, len(Path(path).read_text().splitlines()) + 1))  # a new file: every line
    return lines


def function_spans(source: str) -> dict[tuple[str, ...], range]:
    """(function,) or (class, method) -> its lines, for the functions mutmut mutates (top level and methods)."""
    spans = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spans[(node.name,)] = range(node.lineno, node.end_lineno + 1)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    spans[(node.name, item.name)] = range(item.lineno, item.end_lineno + 1)
    return spans


def mutated_function(name: str) -> tuple[str, ...]:
    """The function a mutant's name points into: x_f__mutmut_3 -> (f,), xǁCǁm__mutmut_3 -> (C, m)."""
    key = name.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    return tuple(key.split("ǁ")[1:3]) if key.startswith("xǁ") else (key[2:],)


def changed_mutants(data: dict, since: str) -> list[str]:
    """Every mutant of a function that has a line changed since the commit."""
    names = []
    for path, file_data in sorted(data.items()):
        lines = changed_lines(since, path)
        if not lines:
            continue
        spans = function_spans(Path(path).read_text())
        names += [name for name in sorted(file_data.exit_code_by_key)
                  if lines.intersection(spans.get(mutated_function(name), ()))]
    return names


def changed(since: str, size: int | None, seed: int, max_children: int | None) -> None:
    data = mutation_data()
    names = changed_mutants(data, since)
    if size is not None and size < len(names):
        by_file: dict[str, list[str]] = defaultdict(list)
        for name in names:
            by_file[next(p for p, d in data.items() if name in d.exit_code_by_key)].append(name)
        names = stratified_sample(by_file, size, seed)
    Path("mutants/changed.txt").write_text("\n".join(names) + "\n")
    print(f"{len(names)} mutants in functions changed since {since}; names in mutants/changed.txt")
    mutmut_main._run(names, max_children)


def report(only: Path | None) -> str:
    """Markdown: per file, the mutants run, killed, survived (and no tests / timeouts), the score, each survivor."""
    names = set(only.read_text().split()) if only else None
    rows, survivors = [], []
    totals = defaultdict(int)
    for path, data in mutation_data(generate=False).items():
        counts = defaultdict(int)
        for name, code in data.exit_code_by_key.items():
            if (names is not None and name not in names) or code is None:
                continue
            status = mutmut_main.status_by_exit_code[code]
            counts[status] += 1
            if status in ("survived", "no tests", "suspicious"):
                survivors.append((path, name, status))
        run = sum(counts.values())
        if run:
            rows.append(f"| {path} | {run} | {counts['killed'] + counts['timeout']} | {counts['survived']} | "
                        f"{counts['no tests']} |")
            for k, v in counts.items():
                totals[k] += v
    run = sum(totals.values())
    killed = totals["killed"] + totals["timeout"]
    score = killed / run if run else 0.0
    margin = 1.96 * math.sqrt(score * (1 - score) / run) if run else 0.0
    lines = ["| file | mutants run | killed | survived | no tests |", "|---|---|---|---|---|", *rows,
             f"| **all** | {run} | {killed} | {totals['survived']} | {totals['no tests']} |", "",
             f"Score: {killed}/{run} = {score:.1%} (95% margin of a sample: ±{margin:.1%})", ""]
    for path, name, status in survivors:
        diff = mutmut_main.get_diff_for_mutant(name, path=path)
        lines += [f"### {name} ({status})", "```diff", diff.strip(), "```", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] not in (["sample"], ["report"], ["changed"]):
        sys.argv = [sys.argv[0], *argv]
        return mutmut_main.cli()
    parser = argparse.ArgumentParser(prog="bench/mutation.py")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--size", type=int, default=300)
    s.add_argument("--seed", type=int, default=10)
    s.add_argument("--max-children", type=int)
    c = sub.add_parser("changed")
    c.add_argument("--since", required=True, help="a commit: the functions changed since it are mutated")
    c.add_argument("--size", type=int, help="a stratified sample of this many (default: all of them)")
    c.add_argument("--seed", type=int, default=10)
    c.add_argument("--max-children", type=int)
    r = sub.add_parser("report")
    r.add_argument("--only", type=Path, help="a file of mutant names (e.g. mutants/sample.txt)")
    args = parser.parse_args(argv)
    if args.command == "sample":
        sample(args.size, args.seed, args.max_children)
    elif args.command == "changed":
        changed(args.since, args.size, args.seed, args.max_children)
    else:
        print(report(args.only))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
