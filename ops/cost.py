"""`make cost`: what the chosen settings cost before anything is deployed. No AWS call, no credentials, unless
--live (`make cost LIVE=1`) asks the AWS Price List API for today's instance prices of any region.

    python -m ops.cost [-c NAME=VALUE ...] [--region REGION] [--live]

Per model: hosting mode, instance type, instance range, USD per hour and per month at the minimum and at the
maximum, what it costs idle, and for image models the cost of 1,000 default images at the documented per-image time.
Prices come from ops/prices.py (source and date there; it records us-east-1 only); a type or region the table does
not know is shown as unknown, never guessed, and the output says how to ask AWS instead. Lambda, API Gateway, S3 and CloudWatch are left out: cents per thousand requests.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import Callable, Optional

from deployment.hosting import HOURS_PER_MONTH, hosting_of
from deployment.settings import Settings, SettingsError, load_settings
from ops import prices
from ops.cdk import cli_region

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class CostRow:
    model: str
    hosting: str
    instance: str  # instance type, or the serverless memory
    instances: str  # "1", "1-4", or serverless concurrency
    hourly_min: Optional[float]
    hourly_max: Optional[float]
    monthly_min: Optional[float]
    monthly_max: Optional[float]
    idle_monthly: Optional[float]
    per_1000_images: Optional[float]
    note: str = ""


def seconds_per_default_image(settings: Settings, model) -> Optional[float]:
    """Seconds one default image (default size and steps) takes on the model's instance, from its step time."""
    step = model.step_seconds
    if not settings.stores_images(model) or step is None:
        return None
    limits = settings.limits
    return step * limits.default_steps * (limits.default_size / 512) ** 2


def rows(settings: Settings, region: Optional[str], live: Optional[prices.PriceList] = None) -> list[CostRow]:
    """The cost table; `live` (a prices.PriceList) prices instances from the AWS Price List API instead of the table
    (it raises prices.PriceListError when AWS cannot be asked)."""
    book = prices.PriceBook(region, live)
    out = []
    for model in settings.catalog:
        config = hosting_of(model)
        if config is None:
            out.append(CostRow(model.name, "existing", "-", "-", None, None, None, None, None, None,
                               "an endpoint made elsewhere: billed to whoever made it"))
            continue
        line = config.cost(book)
        instance, instances = config.size_label(), config.count_label()
        per_image = seconds_per_default_image(settings, model)
        per_1000 = None
        if per_image is not None:
            if not model.on_instances and line.per_second_busy is not None:
                per_1000 = line.per_second_busy * per_image * 1000
            elif model.on_instances and book.hourly(model.instance_type) is not None:
                # One instance busy: its price per second times the seconds 1,000 images take back to back.
                per_1000 = book.hourly(model.instance_type) / 3600 * per_image * 1000
        monthly = [None if h is None else h * HOURS_PER_MONTH for h in (line.hourly_min, line.hourly_max)]
        out.append(CostRow(model.name, model.hosting, instance, instances, line.hourly_min, line.hourly_max,
                           monthly[0], monthly[1], line.idle_monthly, per_1000, line.note))
    out += [batch_row(settings, model, book) for model in settings.catalog if model.batch]
    if settings.in_vpc and settings.vpc_endpoints:
        out.append(network_row(settings, region))
    if settings.waf:
        out.append(waf_row())
    fleet = settings.shared_fleet
    if fleet is not None:  # the instances every shared model runs on, billed once
        shared = [m.name for m in settings.catalog if m.hosting == "shared"]
        price = book.hourly(fleet.instance_type)
        low = fleet.idle_instances()
        hourly = [None if price is None else price * n for n in (low, fleet.maximum)]
        idle = None if price is None else price * fleet.idle_instances() * HOURS_PER_MONTH
        count = str(low) if low == fleet.maximum else f"{low}-{fleet.maximum}"
        note = f"{fleet.instance_type}: not in the price table" if price is None else f"serves {', '.join(shared)}"
        if fleet.all_to_zero and price is not None:
            note += "; scales to zero when idle (a request then waits minutes for an instance)"
        out.append(CostRow("shared endpoint", "shared", fleet.instance_type, count, hourly[0], hourly[1],
                           None if hourly[0] is None else hourly[0] * HOURS_PER_MONTH,
                           None if hourly[1] is None else hourly[1] * HOURS_PER_MONTH, idle, None, note))
    return out


def batch_row(settings: Settings, model, book) -> CostRow:
    """A model's batch jobs (`make batch`): nothing while none runs; a job's instances are billed from their start
    (minutes before the first line) to the last line. The table's prices are real-time hosting's: batch transform
    has its own rows on the pricing page, taken here to be the same per instance type (unverified)."""
    from ops.batch import default_instance_type

    instance_type = default_instance_type(model)
    price = book.hourly(instance_type)
    per_image = seconds_per_default_image(settings, replace(model, instance_type=instance_type, hosting="realtime"))
    per_1000 = None if price is None or per_image is None else price / 3600 * per_image * 1000
    note = (f"{instance_type}: not in the price table" if price is None else
            f"batch jobs (make batch): ${price:.3f} per instance-hour while a job runs, at the real-time rate of "
            "the type (batch transform is priced separately: check the pricing page), plus minutes of instance "
            f"start per job (each 10 minutes of it: ${price / 6:.2f})")
    return CostRow(f"{model.name} batch", "batch", instance_type, "per job", price, price, None, None, 0.0,
                   per_1000, note)


def waf_row() -> CostRow:
    """waf=true: the web ACL and its two rules, monthly whatever the traffic, plus each million requests."""
    monthly = prices.WAF_WEB_ACL_MONTHLY_USD + prices.WAF_RULES * prices.WAF_RULE_MONTHLY_USD
    return CostRow("waf", "firewall", f"web ACL + {prices.WAF_RULES} rules", "-", monthly / HOURS_PER_MONTH,
                   monthly / HOURS_PER_MONTH, monthly, monthly, monthly, None,
                   f"AWS WAF: plus ${prices.WAF_PER_MILLION_REQUESTS_USD:.2f} per million requests inspected, blocked "
                   "ones included")


def network_row(settings: Settings, region: Optional[str]) -> CostRow:
    """The interface VPC endpoints of private networking: billed per endpoint and Availability Zone while they exist.
    A new VPC has two zones; an existing one is counted one zone per subnet given (an upper bound)."""
    services = settings.created_interface_services
    zones = 2 if settings.vpc == "create" else len(settings.subnet_id_list)
    price = prices.interface_endpoint_hourly(region)
    hourly = None if price is None else price * len(services) * zones
    note = (f"VPC endpoints: not in the price table for {region}" if price is None else
            f"interface endpoints {', '.join(services)} in {zones} zones, always on, plus $0.01 per GB they carry; "
            "the S3 gateway endpoint is free; flow logs (a new VPC) are billed per GB logged")
    monthly = None if hourly is None else hourly * HOURS_PER_MONTH
    return CostRow("vpc endpoints", "network", f"{len(services)} x {zones} zones", "-", hourly, hourly, monthly,
                   monthly, monthly, None, note)


def _usd(value: Optional[float], digits: int = 2) -> str:
    return "unknown" if value is None else f"${value:,.{digits}f}"


def table(cost_rows: list[CostRow], region: str, live: bool = False) -> str:
    head = ["model", "hosting", "instance", "count", "$/hour min", "$/hour max", "$/month min", "$/month max",
            "idle $/month", "$/1,000 images"]
    body = [[r.model, r.hosting, r.instance, r.instances, _usd(r.hourly_min, 3), _usd(r.hourly_max, 3),
             *(["-", "-"] if r.hosting == "batch" else [_usd(r.monthly_min, 0), _usd(r.monthly_max, 0)]),
             _usd(r.idle_monthly, 0),
             "-" if r.per_1000_images is None else _usd(r.per_1000_images)] for r in cost_rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.model}: {r.note}" for r in cost_rows if r.note]
    known = sum(r.idle_monthly or 0 for r in cost_rows)
    unknown = [r.model for r in cost_rows if r.idle_monthly is None and r.hosting != "existing"]
    # A part of unknown price makes the total unknown: never "$0" for what has no recorded price.
    total = f"Idle total: {_usd(known, 0)}/month" + (f" plus {', '.join(unknown)} (price unknown)" if unknown else "") \
        if known or not unknown else f"Idle total: unknown ({', '.join(unknown)}: price unknown)"
    coverage = [] if live or region in prices.PRICED_REGIONS else [
        f"ops/prices.py records {', '.join(prices.PRICED_REGIONS)} prices only: for {region}'s, make cost LIVE=1 asks "
        "the AWS Price List API (your credentials, pricing:GetProducts), or see https://aws.amazon.com/sagemaker/pricing/"]
    source = f"{prices.PRICE_LIST_SOURCE}; serverless, VPC endpoints and WAF from ops/prices.py" if live else \
        prices.SOURCE
    return "\n".join([f"Costs in {region} ({source}; a month is {HOURS_PER_MONTH} hours):", *lines,
                      *(["Notes:", *notes] if notes else []), total, *coverage,
                      "Lambda, API Gateway, S3 and CloudWatch add cents per thousand requests. make destroy stops "
                      "every charge above."])


def region_of(settings: Settings, given: Optional[str]) -> str:
    return cli_region(given or settings.region) or DEFAULT_REGION


def main(argv=None, out=sys.stdout, pricing_client_factory: Optional[Callable] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--region", help=f"prices of this region (default: the region setting, AWS_REGION, "
                                         f"else {DEFAULT_REGION})")
    parser.add_argument("--live", action="store_true",
                        help="instance prices from the AWS Price List API (needs credentials allowed "
                             "pricing:GetProducts; every region), not the recorded table")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.context)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    region = region_of(settings, args.region)
    live = prices.PriceList((pricing_client_factory or pricing_client)()) if args.live else None
    try:
        cost_rows = rows(settings, region, live)
    except prices.PriceListError as error:
        print(f"make cost LIVE=1: {error}. Without LIVE=1, make cost prints the recorded prices (no AWS call).",
              file=sys.stderr)
        return 1
    print(table(cost_rows, region, live=live is not None), file=out)
    return 0


def pricing_client():
    """A boto3 Price List client with the CLI's credentials, explicit timeouts and retries."""
    from botocore.config import Config

    from ops.cdk import session

    return session().client("pricing", region_name=prices.PRICE_LIST_REGION, config=Config(
        connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 3}))



if __name__ == "__main__":
    sys.exit(main())
