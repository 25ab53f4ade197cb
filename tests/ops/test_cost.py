"""make cost: the table per model, from the price table, before anything is deployed (no AWS call)."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from deployment.settings import load_settings
from ops import cost, prices

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
    assert "Idle total: unknown (stable-diffusion: price unknown)" in out.getvalue()
    assert rows("instance_type=ml.g6.xlarge")["stable-diffusion"].hourly_min is None


def test_existing_endpoints_cost_nothing_here():
    row = rows("models=jumpstart-stable-diffusion", "jumpstart-stable-diffusion.source=endpoint:js")[
        "jumpstart-stable-diffusion"]
    assert (row.hosting, row.idle_monthly) == ("existing", None)
    assert "Idle total: $0/month" in cost.table([row], "us-east-1")


def test_bad_settings_exit_2_with_the_message(capsys):
    assert cost.main(["-c", "memory_mb=100", "-c", "hosting=serverless"]) == 2
    assert "memory_mb must be one of" in capsys.readouterr().err


def test_the_costs_page_table_is_what_make_cost_prints():
    """docs/costs.md quotes `make cost` for the documented settings; regenerate it when prices or defaults change
    (the command is on the page, above the table)."""
    readme = (ROOT / "docs" / "costs.md").read_text()
    blocks = re.findall(r"make cost CDK_ARGS=\"(?P<args>[^\"]*)\"\n```\n```text\n(?P<out>.*?)```", readme, re.S)
    assert blocks, "docs/costs.md must quote make cost"
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


def price_list_product(region: str, instance_type: str, usd: str) -> str:
    """One GetProducts PriceList item, shaped as the Price List API answers (a JSON string per product)."""
    import json

    return json.dumps({"product": {"productFamily": "ML Instance", "attributes": {
        "regionCode": region, "instanceName": instance_type, "platoinstancetype": "Hosting"}, "sku": "SKU1"},
        "serviceCode": "AmazonSageMaker", "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {"priceDimensions": {
            "SKU1.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd},
                                           "description": f"${usd} per On Demand {instance_type} hosting"}}}}}})


@pytest.fixture
def pricing():
    """A real boto3 Price List client whose answers come from botocore's Stubber (no AWS, no network)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("pricing", region_name=prices.PRICE_LIST_REGION, aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def expect_products(stub, region, instance_type, *items):
    stub.add_response("get_products", {"PriceList": list(items), "FormatVersion": "aws_v1"}, {
        "ServiceCode": "AmazonSageMaker", "Filters": [
            {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "ML Instance"},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
            {"Type": "TERM_MATCH", "Field": "platoinstancetype", "Value": "Hosting"}]})


def test_a_region_the_table_lacks_says_which_it_records_and_how_to_ask_aws():
    out = io.StringIO()
    assert cost.main(["--region", "eu-west-3"], out=out) == 0
    assert "ops/prices.py records us-east-1 prices only: for eu-west-3's, make cost LIVE=1" in out.getvalue()
    out = io.StringIO()
    assert cost.main([], out=out) == 0 and "LIVE=1" not in out.getvalue()  # us-east-1 is recorded


def test_live_prices_any_region_from_the_price_list_api_once_per_type(pricing):
    client, stub = pricing
    expect_products(stub, "eu-west-3", "ml.g5.xlarge", price_list_product("eu-west-3", "ml.g5.xlarge", "1.7250000000"))
    out = io.StringIO()
    assert cost.main(["--region", "eu-west-3", "--live", "-c", "stable-diffusion.batch=true",
                      "-c", "stable-diffusion.max_instances=2"], out=out, pricing_client_factory=lambda: client) == 0
    text = out.getvalue()
    assert "Costs in eu-west-3 (AWS Price List API" in text and "LIVE=1" not in text
    sd = next(line for line in text.splitlines() if line.startswith("stable-diffusion "))
    assert "$1.725" in sd and "$3.450" in sd and "$1,259" in sd  # 1.725 x 730 hours idle


def test_live_prices_that_aws_does_not_list_or_lists_twice_are_unknown(pricing):
    client, stub = pricing
    expect_products(stub, "eu-west-3", "ml.g5.xlarge")  # no product
    expect_products(stub, "eu-west-3", "ml.g6.xlarge", price_list_product("eu-west-3", "ml.g6.xlarge", "1.1"),
                    price_list_product("eu-west-3", "ml.g6.xlarge", "1.3"))
    live = prices.PriceList(client)
    assert live.hourly("eu-west-3", "ml.g5.xlarge") is None
    assert live.hourly("eu-west-3", "ml.g6.xlarge") is None  # two prices for one type: never guessed


def test_live_prices_refused_exit_1_in_words(pricing, capsys):
    client, stub = pricing
    stub.add_client_error("get_products", "AccessDeniedException", "User is not authorized to perform "
                          "pricing:GetProducts", http_status_code=400)
    assert cost.main(["--live"], out=io.StringIO(), pricing_client_factory=lambda: client) == 1
    err = capsys.readouterr().err
    assert "AccessDeniedException" in err and "pricing:GetProducts" in err and "Without LIVE=1" in err


def test_a_region_without_recorded_prices_says_unknown_never_zero():
    text = cost.table(cost.rows(load_settings(["region=ap-southeast-3"]), "ap-southeast-3"), "ap-southeast-3")
    assert "Idle total: unknown (stable-diffusion: price unknown)" in text
    assert "$0" not in text
