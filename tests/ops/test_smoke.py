"""make smoke's own verdicts, against a fake API (local mode runs the whole command in tests/local)."""

from __future__ import annotations

from ops import smoke

CATALOG = {"endpoints": [{"name": "gpt2-cpu", "kind": "text-generation", "endpoint_name": "e"}]}
ROUTES_404 = {"error": {"code": "not_found", "message": "No route GET /no-such-route. Routes: POST /models/gpt2-cpu"}}
GATEWAY_404 = {"error": {"code": "not_found", "message": "Missing Authentication Token"}}
ALLOWED_405 = {"error": {"code": "method_not_allowed", "message": "DELETE is not allowed: POST"}}


class FakeApi:
    """Answers the catalog, then `answers[(method, path)]` or a 400 in the error shape."""

    def __init__(self, answers):
        self.answers = answers

    def call(self, method, path, body=None, key="", query=""):
        if path == "/endpoint":
            return 200, CATALOG, {}, 1.0
        return (*self.answers.get((method, path), (400, {"error": {"code": "x", "message": "x"}}, {})), 1.0)


def verdicts(answers):
    return {(r.method, r.path): r for r in smoke.run(FakeApi(answers), fetcher=lambda url: b"")}


def test_unknown_routes_and_methods_must_come_from_the_fallback():
    good = verdicts({("GET", "/no-such-route"): (404, ROUTES_404, {}),
                     ("DELETE", "/models/gpt2-cpu"): (405, ALLOWED_405, {"allow": "POST, OPTIONS"})})
    assert good[("GET", "/no-such-route")].ok
    assert good[("DELETE", "/models/gpt2-cpu (no such method)")].ok
    # API Gateway's own answer (no fallback deployed): a 404 that names no route, a 403 for the method.
    bad = verdicts({("GET", "/no-such-route"): (404, GATEWAY_404, {}),
                    ("DELETE", "/models/gpt2-cpu"): (403, GATEWAY_404, {})})
    assert not bad[("GET", "/no-such-route")].ok and "does not list the routes" in bad[("GET", "/no-such-route")].note
    assert not bad[("DELETE", "/models/gpt2-cpu (no such method)")].ok
    wrong_allow = verdicts({("DELETE", "/models/gpt2-cpu"): (405, ALLOWED_405, {"Allow": "GET"})})
    assert "does not name POST" in wrong_allow[("DELETE", "/models/gpt2-cpu (no such method)")].note
