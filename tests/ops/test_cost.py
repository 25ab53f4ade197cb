"""make cost: the table per model, from the price table, before anything is deployed (no AWS call)."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from ops import cost, prices
from stacks.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def rows(*pairs, region="us-east-1"):
    return {r.model: r for r in cost.rows(load_settings(list(pairs)), region)}


def test_default_image_model_costs_its_instance_always_and_a_dollar_per_thousand_images():
    row = rows()["stable-diffusion"]
    price = prices.hourly("us-east-1", "ml.g5.xlarge")
    assert (row.hosting, row.instance, row.instances) == ("realtime", "ml.g5.xlarge", "1")
    assert row.hourly_min == row.hourly_max == price
    assert row.monthly_min == row.idle_monthly == pytest.approx(price * 730)
    # 30 steps of 512x512 at the g5's documented 0.09 s/step: 2.7 s per image, 2,700 instance-seconds per 1,000.
    assert row.per_1000_images == pytest.approx(price / 3600 * 2.7 * 1000)


def test_per_image_cost_follows_the_default_image_settings_and_the_step_time():
    base = rows()["stable-diffusion"].per_1000_images
    assert rows("default_steps=15")["stable-diffusion"].per_1000_images == pytest.approx(base / 2)
    assert rows("seconds_per_step=0.18")["stable-diffusion"].per_1000_images == pytest.approx(base * 2)


def test_autoscaling_range_shows_the_minimum_idle_and_the_maximum_busy():
    row = rows("max_instances=4", "min_instances=2")["stable-diffusion"]
    price = prices.hourly("us-east-1", "ml.g5.xlarge")
    assert row.instances == "2-4"
    assert (row.hourly_min, row.hourly_max) == (pytest.approx(2 * price), pytest.approx(4 * price))
    assert row.idle_monthly == pytest.approx(2 * price * 730)
    # Per image: one instance's time, however many run.
    assert row.per_1000_images == pytest.approx(rows()["stable-diffusion"].per_1000_images)


def test_serverless_costs_nothing_idle_unless_concurrency_is_provisioned():
    found = rows("models=minilm-embeddings", "hosting=serverless", "memory_mb=2048", "max_concurrency=4")
    row = found["minilm-embeddings"]
    per_second = prices.serverless_gb_second("us-east-1") * 2
    assert (row.instance, row.instances, row.idle_monthly, row.hourly_min) == ("2048 MB", "0-4 concurrent", 0, 0)
    assert row.hourly_max == pytest.approx(per_second * 4 * 3600)
    warm = rows("models=minilm-embeddings", "hosting=serverless", "memory_mb=2048",
                "provisioned_concurrency=1")["minilm-embeddings"]
    assert warm.idle_monthly == pytest.approx(per_second * 730 * 3600)
    assert warm.hourly_min == pytest.approx(per_second * 3600)  # the warm instance's hour, the idle month's 1/730
    assert "upper bound" in warm.note


def test_unknown_region_or_type_is_unknown_never_guessed():
    row = rows(region="eu-west-1")["stable-diffusion"]
    assert (row.hourly_min, row.idle_monthly, row.per_1000_images) == (None, None, None)
    assert "not in the price table" in row.note
    out = io.StringIO()
    assert cost.main(["--region", "eu-west-1"], out=out) == 0
    assert "unknown" in out.getvalue() and "stable-diffusion (price unknown)" in out.getvalue()
    assert rows("instance_type=ml.g6.xlarge")["stable-diffusion"].hourly_min is None


def test_existing_endpoints_cost_nothing_here():
    row = rows("models=jumpstart-stable-diffusion", "jumpstart-stable-diffusion.source=endpoint:js")[
        "jumpstart-stable-diffusion"]
    assert (row.hosting, row.idle_monthly) == ("existing", None)
    assert "Idle total: $0/month" in cost.table([row], "us-east-1")


def test_bad_settings_exit_2_with_the_message(capsys):
    assert cost.main(["-c", "memory_mb=100", "-c", "hosting=serverless"]) == 2
    assert "memory_mb must be one of" in capsys.readouterr().err


def test_readme_cost_table_is_what_make_cost_prints():
    """The README's Costs section quotes `make cost` for the documented settings; regenerate it when prices or
    defaults change (the command is in the README, above the table)."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"make cost CDK_ARGS=\"(?P<args>[^\"]*)\"\n```\n```text\n(?P<out>.*?)```", readme, re.S)
    assert blocks, "the README's Costs section must quote make cost"
    for args, quoted in blocks:
        out = io.StringIO()
        assert cost.main(shlex.split(args), out=out) == 0
        assert quoted == out.getvalue()


def test_serverless_in_an_unknown_region_is_unknown_and_says_so():
    row = rows("models=minilm-embeddings", "hosting=serverless", region="eu-west-1")["minilm-embeddings"]
    assert (row.hourly_min, row.hourly_max, row.idle_monthly) == (None, None, None)
    assert row.note == "serverless: not in the price table"


SHARED = ("models=gpt2-cpu,minilm-embeddings", "gpt2-cpu.hosting=shared", "minilm-embeddings.hosting=shared",
          "minilm-embeddings.instance_type=ml.m5.xlarge")


def test_the_shared_endpoint_is_billed_once_and_idles_at_zero_only_when_every_model_may():
    price = prices.hourly("us-east-1", "ml.m5.xlarge")
    fixed = rows(*SHARED, "shared_instances=2")
    assert fixed["gpt2-cpu"].hourly_min == fixed["minilm-embeddings"].hourly_max == 0.0  # billed on the endpoint
    endpoint = fixed["shared endpoint"]
    assert (endpoint.instances, endpoint.hourly_min, endpoint.hourly_max) == ("2", 2 * price, 2 * price)
    assert endpoint.idle_monthly == pytest.approx(2 * price * 730)
    grows = rows(*SHARED, "shared_max_instances=3")["shared endpoint"]
    assert (grows.instances, grows.hourly_min, grows.hourly_max) == ("1-3", price, 3 * price)
    partly = rows(*SHARED, "gpt2-cpu.min_instances=0")["shared endpoint"]
    assert (partly.instances, partly.idle_monthly) == ("1", pytest.approx(price * 730))
    idle = rows(*SHARED, "gpt2-cpu.min_instances=0", "minilm-embeddings.min_instances=0")["shared endpoint"]
    assert (idle.instances, idle.hourly_min, idle.hourly_max, idle.idle_monthly) == ("0-1", 0.0, price, 0.0)
    assert "scales to zero when idle" in idle.note
