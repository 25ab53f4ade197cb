"""Settings: typed reading from context, and one message listing every problem."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_api.schema import ImageLimits

from deployment.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_valid_and_documented_values():
    s = Settings.from_values({})
    model, = s.catalog
    assert (model.name, model.instance_type, model.min_instances) == ("stable-diffusion", "ml.g5.xlarge", None)
    assert (s.url_ttl_seconds, s.image_expiry_days) == (900, 7)
    assert model.gpu and model.nvme and s.endpoint_name(model) == "sagemakermodelapi-stable-diffusion"
    assert s.limits == ImageLimits()
    assert (s.lambda_timeout_seconds, s.invoke_read_timeout_seconds) == (28, 22)


def test_text_values_from_the_command_line_are_converted():
    s = Settings.from_values({"instance_count": "3", "retain_bucket": "true", "throttle_rate": "0.5",
                              "hub_token_secret": "none", "max_images": "2", "instance_type": "ml.c5.xlarge",
                              "seconds_per_step": "0.25", "api_logging": "off"})
    model, = s.catalog
    assert (model.min_instances, s.retain_bucket, s.throttle_rate, s.hub_token_secret) == (3, True, 0.5, None)
    assert s.limits.max_images == 2 and not model.gpu and not model.nvme
    assert (model.seconds_per_step, s.api_logging) == (0.25, "off")


def test_every_problem_is_listed_in_one_message():
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({
            "instance_type": "ml.zz9.xlarge", "instance_count": "0", "url_ttl_seconds": "86400",
            "log_retention_days": "10", "image_expiry_days": "0", "instnce_count": "1", "retain_bucket": "maybe",
            "max_size": "1004", "api_timeout_seconds": "60", "kms_key_arn": "my-key", "region": "xx-nowhere-1",
        })
    problems = caught.value.problems
    text = str(caught.value)
    expected = [
        "unknown instance family 'zz9'", "min_instances must be at least 1", "url_ttl_seconds must be from 60 to 3000",
        "log_retention_days must be one of", "image_expiry_days must be at least 1",
        "unknown setting 'instnce_count' (did you mean 'instance_count'?)", "retain_bucket: expected true or false",
        "max_size must be a multiple of 8", "api_timeout_seconds must be from 12 to 29",
        "kms_key_arn 'my-key' is not a KMS key ARN", "region 'xx-nowhere-1' has no huggingface-pytorch-inference image",
    ]
    for fragment in expected:
        assert fragment in text, fragment
    assert len(problems) == len(expected)
    assert text.startswith("Invalid settings:\n  - ")


def test_no_models_is_the_one_problem_named():
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"models": " , "})
    assert caught.value.problems == ["models must name at least one model"]


@pytest.mark.parametrize("values, fragment", [
    ({"instance_type": "g5.xlarge"}, "instance_type 'g5.xlarge' is not a SageMaker instance type such as "
                                     "'ml.g5.xlarge'"),
    ({"models": ""}, "models must name at least one model"),
    ({"max_prompt_chars": "10001"}, "max_prompt_chars must be at most 10000 (got 10001)"),
    ({"volume_size_gb": "50"}, "volume_size_gb cannot be set for ml.g5.xlarge"),
    ({"startup_timeout_seconds": "30"}, "startup_timeout_seconds must be from 60 to 3600"),
    ({"container": "docker.io/library/python:3"}, "expected hf-inference, hf-inference-gpu, hf-inference-cpu, tgi "
                                                  "or an ECR image URI"),
    ({"source": "hub:not a model id"}, "expected hub:<org>/<model>"),
    ({"stack_name": "1bad_name"}, "stack_name '1bad_name'"),
    ({"throttle_rate": "0"}, "throttle_rate must be above 0 requests per second (got 0)"),
    ({"throttle_burst": "0"}, "throttle_burst must be at least 1 request (got 0)"),
    ({"daily_quota": "0"}, "daily_quota must be at least 1"),
    ({"default_steps": "80"}, "default_steps (80) must not exceed max_steps (50)"),
    ({"min_size": "0"}, "min_size must be a positive number"),
    ({"hub_token_secret": "bad secret!"}, "is not a Secrets Manager secret name or ARN"),
    ({"min_instances": 1.5}, "min_instances: expected int"),
    ({"throttle_burst": "five"}, "throttle_burst: expected a whole number, got 'five'"),
])
def test_single_problems(values, fragment):
    with pytest.raises(SettingsError) as caught:
        Settings.from_values(values)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("text, value", [("true", True), ("yes", True), ("1", True), ("TRUE", True),
                                         ("false", False), ("no", False), ("0", False), (" No ", False)])
def test_switches_read_the_usual_spellings(text, value):
    assert Settings.from_values({"retain_bucket": text}).retain_bucket is value


def test_a_url_lifetime_out_of_bounds_is_explained():
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"url_ttl_seconds": "4000"})
    assert "url_ttl_seconds must be from 60 to 3000 (got 4000): URLs are signed with a role session, which AWS caps " \
           "at 1 hour when assumed from the Lambda's own" in str(caught.value)


def test_the_top_of_every_bound_is_allowed():
    assert Settings.from_values({"daily_quota": "1", "shared_instances": "100", "models": "gpt2-cpu",
                                 "gpt2-cpu.hosting": "shared"}).shared_fleet.initial == 100


def test_what_settings_derive_cannot_be_set():
    with pytest.raises(SettingsError, match="unknown setting 'catalog'"):
        Settings.from_values({"catalog": "[]"})


def test_lower_bounds_are_inclusive():
    # A burst of 1 and a quota of 1 are the smallest valid values, not problems.
    settings = Settings.from_values({"throttle_burst": "1", "daily_quota": "1"})
    assert (settings.throttle_burst, settings.daily_quota) == (1, 1)


def test_region_with_image_override_needs_no_dlc_account():
    uri = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-image:1"
    assert Settings.from_values({"region": "eu-west-9", "container": uri}).region == "eu-west-9"


def test_synth_fails_with_the_message_and_no_traceback(tmp_path):
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path),
           "CDK_CONTEXT_JSON": json.dumps({"instance_type": "ml.zz9.xlarge", "url_ttl_seconds": "99999"})}
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "Invalid settings:" in result.stderr
    assert "unknown instance family 'zz9'" in result.stderr and "url_ttl_seconds" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("region", ["ap-east-2", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "mx-central-1"])
def test_regions_without_the_hf_inference_image_are_refused_but_tgi_is_served(region):
    with pytest.raises(SettingsError, match=f"region '{region}' has no huggingface-pytorch-inference image"):
        Settings.from_values({"region": region})
    assert Settings.from_values({"region": region, "models": "gpt2-tgi"}).region == region


def test_kms_keys_multi_region_accepted_other_regions_refused():
    mrk = "arn:aws:kms:eu-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    assert Settings.from_values({"kms_key_arn": mrk, "region": "eu-west-1"}).kms_key_arn == mrk
    assert Settings.from_values({"kms_key_arn": mrk}).kms_key_arn == mrk  # checked at deploy time (CfnRule)
    with pytest.raises(SettingsError) as other_region:
        Settings.from_values({"kms_key_arn": mrk, "region": "us-east-1"})
    assert other_region.value.problems == [
        "kms_key_arn is in eu-west-1, the stack in us-east-1: S3 and SageMaker use keys of their own region only (a "
        "multi-Region key has a replica ARN in each region)"]
    with pytest.raises(SettingsError) as malformed:
        Settings.from_values({"kms_key_arn": mrk.replace("mrk-", "mrk-zz")})
    assert malformed.value.problems == [
        f"kms_key_arn {mrk.replace('mrk-', 'mrk-zz')!r} is not a KMS key ARN (key/<uuid> or key/mrk-<32 hex>)"]


def test_api_logging_choices():
    for choice in ("account-role", "create-role", "off"):
        assert Settings.from_values({"api_logging": choice}).api_logging == choice
    with pytest.raises(SettingsError, match="api_logging must be one of account-role, create-role, off"):
        Settings.from_values({"api_logging": "yes"})


def test_the_default_image_request_must_fit_in_the_time_a_request_has():
    with pytest.raises(SettingsError, match=r"default image request \(512x512, 30 steps\) takes about 97 s on "
                                            r"ml.m5.xlarge, over the 22 s"):
        Settings.from_values({"instance_type": "ml.m5.xlarge"})
    # A faster documented step (or fewer default steps) fits.
    assert Settings.from_values({"instance_type": "ml.m5.xlarge", "seconds_per_step": "0.3"})
    assert Settings.from_values({"instance_type": "ml.g4dn.xlarge"}).image_config_for(
        Settings.from_values({"instance_type": "ml.g4dn.xlarge"}).catalog[0]).step_seconds == 0.2


def test_tgi_max_new_tokens_fit_the_models_token_budget():
    s = Settings.from_values({"models": "gpt2-tgi"})
    limits = s.text_limits_for(s.catalog[0])
    assert (limits.max_new_tokens, limits.default_max_new_tokens) == (1024 - 768, 128)
    s = Settings.from_values({"models": "gpt2-tgi", "max_total_tokens": "900", "max_input_tokens": "850"})
    limits = s.text_limits_for(s.catalog[0])
    assert (limits.max_new_tokens, limits.default_max_new_tokens) == (50, 50)
    cpu = Settings.from_values({"models": "gpt2-cpu"})
    assert cpu.text_limits_for(cpu.catalog[0]) == cpu.text_limits


def test_limits_and_text_limits_are_read_from_the_settings():
    s = Settings.from_values({"max_size": "640", "default_steps": "20", "max_new_tokens": "300"})
    assert (s.limits.max_size, s.limits.default_steps, s.text_limits.max_new_tokens) == (640, 20, 300)


def test_the_default_token_count_must_fit_the_maximum_and_is_checked_once_the_numbers_are_numbers():
    from deployment.settings import TextLimits

    assert TextLimits(max_new_tokens=64, default_max_new_tokens=128).problems() == [
        "default_max_new_tokens (128) must not exceed max_new_tokens (64)"]
    assert TextLimits(max_new_tokens=64, default_max_new_tokens=64).problems() == []
    # A value that is no number is named alone: no comparison with it.
    assert TextLimits(max_new_tokens=0, default_max_new_tokens=128).problems() == [
        "max_new_tokens must be a positive whole number (got 0)"]


def test_each_hosting_mode_is_checked_against_its_own_region_table():
    """A region that has one mode's feature but not another's: the mode that needs it passes there, the other is
    refused naming its own feature; a mode without a feature is never refused for its region."""
    from deployment.hosting import HOSTING_MODES
    from deployment.service_regions import FEATURES

    tables = {name: FEATURES[mode.feature][0] for name, mode in HOSTING_MODES.items() if mode.feature}
    assert set(tables) == {"serverless", "shared"}
    everywhere = set().union(*tables.values())
    checked = 0
    for name, mode in HOSTING_MODES.items():
        for region in sorted(everywhere):
            problems = [p for p in load_settings([f"hosting={name}", "models=minilm-embeddings"]).region_problems(
                region) if "hosting=" in p]
            if mode.feature is None or region in tables[name]:
                assert problems == [], (name, region)
            else:
                assert len(problems) == 1 and f"{mode.feature} is not available in {region}" in problems[0]
                checked += 1
    assert checked >= 2  # some region lacks each table's feature while having the other's
