"""`make logs MODEL=<name>`: follow a deployed model's log groups, the endpoint's (what the container does: model
download and load at start, errors) and its Lambda's (one JSON line per request).

    python -m ops.logs stable-diffusion [--since 30m] [--no-follow] [-c NAME=VALUE ...]

Useful while `make deploy` waits on the endpoint (minutes), and after a failed deploy: `make deploy` keeps a failed
stack's resources (--no-rollback), so the container's log lines stay readable until `make destroy`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Callable, Optional

from deployment.model_catalog import pascal
from deployment.settings import Settings, load_settings
from ops import cdk

SINCE = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def endpoint_log_groups(settings: Settings, model_name: str) -> dict[str, str]:
    """label -> log group of what runs the model: its endpoint's, and for a shared model its inference
    component's too (where its container writes; the endpoint's holds what the instances do)."""
    model = settings.model(model_name)
    if model.existing_endpoint is not None:
        return {}
    groups = {"endpoint": f"/aws/sagemaker/Endpoints/{settings.endpoint_name(model)}"}
    if model.hosting == "shared":
        groups["component"] = f"/aws/sagemaker/InferenceComponents/{settings.component_name(model)}"
    return groups


def function_log_group(cloudformation, stack_name: str, model_name: str) -> Optional[str]:
    """The model's Lambda log group: the stack's LogGroup whose logical id starts <Model>FunctionLogs."""
    prefix = f"{pascal(model_name)}FunctionLogs"
    try:
        resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    except Exception:  # no stack (yet): the endpoint's group may still tell what happened
        return None
    return next((r.get("PhysicalResourceId") for r in resources if r["ResourceType"] == "AWS::Logs::LogGroup"
                 and r["LogicalResourceId"].startswith(prefix)), None)


def parse_since(text: str) -> int:
    match = SINCE.match(text)
    if not match:
        raise argparse.ArgumentTypeError("expected a number and s, m, h or d, e.g. 30m")
    return int(match["n"]) * UNIT_SECONDS[match["unit"]]


def read(logs, groups: dict[str, str], start_ms: int, seen: set) -> tuple[list[str], int]:
    """New lines of every group since start_ms, oldest first, as '[label] message'; and the newest timestamp."""
    lines, newest = [], start_ms
    for label, group in groups.items():
        kwargs = {"logGroupName": group, "startTime": start_ms}
        while True:
            try:
                page = logs.filter_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                break  # not created yet (SageMaker makes the endpoint's streams once the container starts)
            for event in page.get("events", []):
                if event["eventId"] in seen:
                    continue
                seen.add(event["eventId"])
                newest = max(newest, event["timestamp"])
                lines.append((event["timestamp"], f"[{label}] {event['message'].rstrip()}"))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return [line for _, line in sorted(lines)], newest


def follow(logs, groups: dict[str, str], since_seconds: int, keep_following: bool, out=sys.stdout,
           sleep: Callable[[float], None] = time.sleep, now: Callable[[], float] = time.time) -> int:
    start = int((now() - since_seconds) * 1000)
    seen: set = set()
    try:
        while True:
            lines, start = read(logs, groups, start, seen)
            for line in lines:
                print(line, file=out, flush=True)
            if not keep_following:
                return 0
            sleep(2)
    except KeyboardInterrupt:
        return 0


def main(argv=None, session=None, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.logs", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the model's name (see GET /endpoint or the models setting)")
    parser.add_argument("--since", type=parse_since, default=parse_since("30m"), help="how far back (default 30m)")
    parser.add_argument("--no-follow", action="store_true", help="print what is there and stop")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE")
    # Other CDK arguments (make passes CDK_ARGS to every command) are not ours: ignored.
    args, _ = parser.parse_known_args(argv)
    settings = load_settings(args.context)
    if args.model not in {m.name for m in settings.catalog}:
        print(f"logs: no model {args.model!r}; models: {', '.join(m.name for m in settings.catalog)}", file=out)
        return 2
    ready = cdk.settings_and_session(args.context, "make logs", out, session)
    if ready is None:
        return 2
    settings, session = ready
    groups = endpoint_log_groups(settings, args.model)
    function_group = function_log_group(session.client("cloudformation"), settings.stack_name, args.model)
    if function_group:
        groups["lambda"] = function_group
    print(f"logs: {', '.join(f'{k} {v}' for k, v in groups.items())}"
          + ("" if args.no_follow else " (following; Ctrl-C stops)"), file=out, flush=True)
    return follow(session.client("logs"), groups, args.since, not args.no_follow, out=out)


if __name__ == "__main__":
    sys.exit(main())
