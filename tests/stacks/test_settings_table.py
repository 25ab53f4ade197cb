"""What every setting does with a grid of values, against the reviewed tables tests/stacks/snapshots/settings/<context>.json
(one per context: the stack's defaults and a few combinations, each preset, each hosting mode).

test_settings.py states the rules one by one; this table notices what no rule test names: each setting (and each
model field, on every kind of model and hosting mode) is tried with the same generic values (blank, text, negative,
zero, fractions, huge numbers, booleans), with every value the stack tests use and small corruptions of it (a
character short, one too many, upper-cased, a leading space, a list's first item alone or twice), and with the values
on both sides of each numeric bound. Each row is the value and the outcome: "ok" or the whole message `cdk synth` would print. A changed bound, a
reworded message or a value newly accepted fails here with the rows that changed. After an intended change,
`make snapshots` rewrites the table (new boundaries are found again by search) and `git diff` is the review.

The contexts follow the registries (every preset of deployment/model_catalog.PRESETS, every hosting mode of
deployment/hosting.HOSTING_MODES on the first preset that accepts it), and a message that lists a registry shows a
placeholder instead (<presets>, <kinds>, <hosting modes>, <protocols of KIND>, <auth modes>): registering a preset, a
kind or a mode adds its own rows and rewrites none of the others.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path

from model_api.kinds import KINDS
from test_least_privilege_and_destroy import VARIANTS as LEAST_PRIVILEGE_VARIANTS
from test_nag_and_lint import SETTING_VARIANTS

from deployment.hosting import HOSTING_MODES
from deployment.model_catalog import OVERRIDABLE, PRESETS, ModelSpec
from deployment.settings import Settings, SettingsError
from stacks.rest_api import AUTH_MODES

TABLES = Path(__file__).parent / "snapshots" / "settings"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"  # make snapshots

GENERIC = ["", "none", "x", "-1", "0", "1", "2", "0.5", "1.5", "true", "false", "99999999999"]


def _preset_context(name: str) -> dict:
    """A preset alone (one that fronts an existing endpoint, with one named)."""
    return {"models": name, **({f"{name}.source": "endpoint:existing"} if PRESETS[name].existing_endpoint else {})}


def _hosting_context(mode: str) -> tuple[str, dict]:
    """(context name, settings) of a hosting mode on the first preset that accepts it."""
    for name in PRESETS:
        values = {**_preset_context(name), f"{name}.hosting": mode}
        if outcome(values) == "ok":
            return f"{name}-{mode}", values
    raise AssertionError(f"no preset takes hosting={mode}")


def outcome(values: dict) -> str:
    try:
        Settings.from_values(values)
    except SettingsError as exc:
        return str(exc)
    return "ok"


# Where model fields are tried: every preset, and each hosting mode (beyond a preset's own) on a preset that takes it.
CONTEXTS = {
    **{name: _preset_context(name) for name in PRESETS},
    **dict(_hosting_context(mode) for mode in HOSTING_MODES if mode != "realtime"),
}
# Where the stack's own settings are tried: alone, and beside the settings they are checked together with.
GLOBAL_CONTEXTS = {
    "default": {},
    "shared": next(c for c in CONTEXTS.values() if "shared" in c.values()),
    "vpc-existing": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
                     "route_table_ids": "rtb-0123456789abcdef0,rtb-0123456789abcdef1"},
    "domain-cognito": {"region": "us-east-1", "domain_name": "api.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
                       "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/"
                                          "11111111-2222-3333-4444-555555555555",
                       "auth": "cognito",
                       "cognito_user_pool_arn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"},
}
SETTING_FIELDS = sorted(name for name, f in Settings.__dataclass_fields__.items() if not f.metadata.get("derived"))
# What a registry's names look like in a message -> the placeholder the tables show (longest first: a kind's
# protocols may be a part of another list).
PLACEHOLDERS = sorted({
    ", ".join(PRESETS): "<presets>", ", ".join(KINDS): "<kinds>", ", ".join(HOSTING_MODES): "<hosting modes>",
    ", ".join(AUTH_MODES): "<auth modes>",
    **{f"(one of {', '.join(kind.protocols)})": f"(one of <protocols of {name}>)" for name, kind in KINDS.items()},
}.items(), key=lambda item: -len(item[0]))


def shown(answer: str) -> str:
    """An outcome as the tables show it: registry lists replaced by their placeholders."""
    for names, placeholder in PLACEHOLDERS:
        answer = answer.replace(names, placeholder)
    return answer


def _seen_values() -> dict[str, set[str]]:
    """field -> every value the stack tests' variants give it (a model field under any model's name)."""
    seen: dict[str, set[str]] = {}
    for variant in [*SETTING_VARIANTS, *LEAST_PRIVILEGE_VARIANTS.values()]:
        for key, value in variant.items():
            if key == "model_specs":
                for spec in json.loads(value).values():
                    for field, field_value in spec.items():
                        seen.setdefault(field, set()).add(str(field_value))
            seen.setdefault(key.rpartition(".")[2], set()).add(str(value))
    return seen


def _corruptions(value: str) -> list[str]:
    """The value, a character short, one too many, upper-cased, with a leading space; a list's first item alone, and
    the list with its first item twice."""
    out = [value, value[:-1], value + "x", value.upper(), " " + value]
    if "," in value and not value.lstrip().startswith("{"):
        first = value.split(",")[0]
        out += [first, f"{first},{value}"]
    return out


def _rows(context: str, base: dict, name: str, hint, start, seen: dict) -> list[list[str]]:
    """One setting's rows in one context: the generic values, the seen ones and their corruptions, the bounds."""
    def accepted(text):
        return outcome({**base, name: text}) == "ok"
    values = list(GENERIC)
    for value in sorted(seen.get(name, ())):
        values += _corruptions(value)
    values += _bounds_of(accepted, hint, start)
    return [[context, name, v] for v in dict.fromkeys(values)]


def cases() -> list[list[str]]:
    """[context, setting, value] for every row of the table (each context's base settings, then setting=value)."""
    seen = _seen_values()
    hints, defaults = typing.get_type_hints(Settings), Settings()
    rows = [row for context, base in GLOBAL_CONTEXTS.items() for name in SETTING_FIELDS
            for row in _rows(context, base, name, hints[name], getattr(defaults, name), seen)]
    model_hints = typing.get_type_hints(ModelSpec)
    for context, base in CONTEXTS.items():
        model = PRESETS[base["models"]]
        for name in OVERRIDABLE:
            start = getattr(model, name)
            rows += _rows(context, base, name, model_hints[name], 1 if start is None else start, seen)
    return rows


def _bounds_of(accepted, hint, start) -> list[str]:
    """The values on both sides of the lowest and the highest accepted number, found by bisection from an accepted
    start (a bound is where acceptance changes; a range with holes shows its outer edges). Nothing for a setting that
    is not a number or whose start is refused."""
    target = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
    if target not in (int, float) or isinstance(start, bool) or not isinstance(start, (int, float)):
        return []
    start = int(start)
    if not accepted(str(start)):
        return []
    far = 10**12

    def highest(ok, low_ok: int, high_bad: int) -> int:
        while high_bad - low_ok > 1:
            middle = (low_ok + high_bad) // 2
            low_ok, high_bad = (middle, high_bad) if ok(middle) else (low_ok, middle)
        return low_ok

    out = []
    if not accepted(str(-far)):
        low = -highest(lambda n: accepted(str(-n)), -start, far)
        out += [low - 1, low]
    if not accepted(str(far)):
        high = highest(lambda n: accepted(str(n)), start, far)
        out += [high, high + 1]
    texts = [str(n) for n in out]
    if target is float and out:
        texts += [str(out[0] - 0.5), str(out[-1] + 0.5)]
    return texts


def _table(rows: list[list[str]]) -> str:
    return "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n"


def stored_rows() -> list[list[str]]:
    return [row for path in sorted(TABLES.glob("*.json")) for row in json.loads(path.read_text())]


def test_every_setting_answers_each_value_as_the_reviewed_table_says():
    if UPDATE:
        by_context: dict[str, list] = {}
        for case in cases():
            by_context.setdefault(case[0], []).append([*case, shown(outcome(_values(*case)))])
        TABLES.mkdir(exist_ok=True)
        for stale in {p.stem for p in TABLES.glob("*.json")} - set(by_context):
            (TABLES / f"{stale}.json").unlink()
        for context, rows in by_context.items():
            (TABLES / f"{context}.json").write_text(_table(rows))
    expected = stored_rows()
    assert {context for context, *_ in expected} == {*GLOBAL_CONTEXTS, *CONTEXTS}, "`make snapshots`"
    changed = []
    for context, name, value, answer in expected:
        actual = shown(outcome(_values(context, name, value)))
        if actual != answer:
            changed.append(f"{context}: {name}={value!r}\n  table:  {answer!r}\n  now:    {actual!r}")
    assert not changed, (f"{len(changed)} of {len(expected)} settings answers differ from the reviewed table "
                         "(intended? `make snapshots`, then review git diff):\n" + "\n".join(changed[:40]))


def test_the_table_tries_every_setting_and_every_model_field_in_every_context():
    rows = stored_rows()
    tried = {(context, name) for context, name, _, _ in rows}
    assert {(context, name) for context in GLOBAL_CONTEXTS for name in SETTING_FIELDS} <= tried
    assert {(context, name) for context in CONTEXTS for name in OVERRIDABLE} <= tried
    # and it is not all one answer: each context refuses some values and accepts others
    for context in [*GLOBAL_CONTEXTS, *CONTEXTS]:
        answers = {answer == "ok" for c, _, _, answer in rows if c == context}
        assert answers == {True, False}, context


def test_the_bounds_found_by_search_are_where_the_rules_put_them():
    def accepted(text):
        return outcome({"url_ttl_seconds": text}) == "ok"
    assert _bounds_of(accepted, int, 900) == ["59", "60", "3000", "3001"]
    assert _bounds_of(lambda text: outcome({"throttle_rate": text}) == "ok", float, 2.0)[:2] == ["0", "1"]


def _values(context: str, name: str, value: str) -> dict:
    return {**(GLOBAL_CONTEXTS[context] if context in GLOBAL_CONTEXTS else CONTEXTS[context]), name: value}


def test_registry_lists_show_as_placeholders():
    assert shown(f"unknown model 'x': presets are {', '.join(PRESETS)}; define others") == \
        "unknown model 'x': presets are <presets>; define others"
    assert shown(f"hosting 'x' must be one of {', '.join(HOSTING_MODES)}") == "hosting 'x' must be one of <hosting modes>"
    rows = stored_rows()
    assert any("<presets>" in answer for *_, answer in rows) and any("<kinds>" in answer for *_, answer in rows)
    assert not any(", ".join(PRESETS) in answer or ", ".join(HOSTING_MODES) in answer for *_, answer in rows)
