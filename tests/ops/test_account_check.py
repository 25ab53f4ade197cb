"""Every make target that calls AWS checks the session first (ops.cdk.checked_session): without a region or
without credentials it says so in one line, in preflight's words, and starts nothing. No AWS call is made: botocore
refuses to sign without credentials before it sends anything."""

from __future__ import annotations

import io

import pytest

from ops import cdk, destroy, integ, logs, preflight, smoke

TARGETS = {
    "make smoke": lambda out: smoke.main([], out=out),
    "make logs": lambda out: logs.main(["stable-diffusion", "--no-follow"], out=out),
    "make destroy": lambda out: destroy.main(["--force"], out=out, run=_never),
    "make integ": lambda out: integ.main([], cdk=_never, out=out),
}


def _never(*args, **kwargs):
    raise AssertionError("nothing may run without an AWS session")


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.mark.parametrize("target", TARGETS)
def test_without_a_region_each_target_says_how_to_name_one(no_aws, target):
    out = io.StringIO()
    assert TARGETS[target](out) == 2
    assert out.getvalue() == f"{target}: {cdk.NO_REGION}; {cdk.NO_REGION_FIX}\n"


@pytest.mark.parametrize("target", TARGETS)
def test_without_credentials_each_target_says_how_to_give_them(no_aws, target):
    no_aws.setenv("AWS_REGION", "eu-west-1")
    out = io.StringIO()
    assert TARGETS[target](out) == 2
    assert out.getvalue() == (f"{target}: no usable AWS credentials (NoCredentialsError: Unable to locate "
                              f"credentials); {cdk.NO_CREDENTIALS_FIX}\n")


def test_preflight_says_the_same_words(no_aws):
    no_aws.setenv("AWS_REGION", "eu-west-1")
    check, account = preflight.credentials(preflight.Clients("eu-west-1"))
    assert account is None and check.fix == cdk.NO_CREDENTIALS_FIX
    assert check.detail == "no usable AWS credentials (NoCredentialsError: Unable to locate credentials)"


def test_smoke_with_a_url_and_key_needs_no_aws(no_aws, monkeypatch):
    called = []
    monkeypatch.setattr(smoke, "run", lambda api, *args, **kwargs: called.append((api.base_url, api.key)) or [])
    monkeypatch.setattr(smoke, "render", lambda results: "table")
    out = io.StringIO()
    assert smoke.main(["--url", "http://127.0.0.1:9", "--key", "k"], out=out) == 0
    assert called == [("http://127.0.0.1:9", "k")] and out.getvalue() == "table\n"
