"""Render CloudFormation values (Ref, GetAtt, Join, Sub, FindInMap) as readable strings, so tests can compare
exact IAM statements and image URIs. `params` resolves pseudo parameters, e.g. for a given region."""

from __future__ import annotations

import re


def render(value, template: dict, params: dict | None = None):
    params = params or {}
    if isinstance(value, list):
        return [render(v, template, params) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {k: render(v, template, params) for k, v in value.items()}
    (fn, arg), = value.items()
    if fn == "Ref":
        return params.get(arg, f"${{{arg}}}")
    if fn == "Fn::GetAtt":
        return f"${{{arg[0]}.{arg[1]}}}"
    if fn == "Fn::Join":
        return arg[0].join(str(render(v, template, params)) for v in arg[1])
    if fn == "Fn::Sub":
        text = arg if isinstance(arg, str) else arg[0]
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(params.get(m.group(1), m.group(0))), text)
    if fn == "Fn::FindInMap":
        name, key, attr = (render(a, template, params) for a in arg)
        mapping = template["Mappings"][name]
        return mapping[key][attr] if key in mapping else f"FindInMap({name},{key},{attr})"
    return {fn: render(arg, template, params)}


def resources(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def one(template: dict, kind: str) -> tuple[str, dict]:
    found = resources(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def statements(policy_document: dict, template: dict, params: dict | None = None) -> list[dict]:
    """Statements with tokens rendered and Action/Resource always lists, for exact comparison."""
    out = []
    for statement in policy_document["Statement"]:
        rendered = render(statement, template, params)
        for key in ("Action", "Resource"):
            if isinstance(rendered.get(key), str):
                rendered[key] = [rendered[key]]
        rendered.pop("Sid", None)
        out.append(rendered)
    return out
