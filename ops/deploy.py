"""`make deploy`: preflight, then `cdk deploy --no-rollback`, and when it fails, why.

    python -m ops.deploy [--skip-preflight] [CDK ARGUMENTS ...]      (make deploy CDK_ARGS="-c a=b")

--no-rollback: when a container fails its health check, CloudFormation would roll back and delete the endpoint's log
group, the one place that says why. Kept, the failed stack's resources (a failed endpoint bills no instance) hold
the container's log lines; this command prints the endpoint's failure reason and its last log lines, `make logs
MODEL=<name>` shows more, a fixed deploy continues from there, and `make destroy` removes everything.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

from deployment.settings import SettingsError, load_settings
from ops import cdk, preflight
from ops.logs import endpoint_log_groups


def explain_failure(settings, session, out=sys.stdout, lines: int = 40) -> None:
    """Each endpoint's failure reason and the last log lines of its container."""
    sagemaker, logs = session.client("sagemaker"), session.client("logs")
    for model in settings.catalog:
        if model.existing_endpoint is not None:
            continue
        name = settings.endpoint_name(model)
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
            status, reason = endpoint["EndpointStatus"], endpoint.get("FailureReason", "")
        except Exception as error:  # not created, or not readable: say so and go on
            status, reason = "not created", str(error)[:200]
        print(f"\nendpoint {name} ({model.name}): {status}" + (f"\n  reason: {reason}" if reason else ""), file=out)
        for group in endpoint_log_groups(settings, model.name).values():  # a shared model's component too
            try:
                events = logs.filter_log_events(logGroupName=group, startTime=int((time.time() - 6 * 3600) * 1000),
                                                limit=1000).get("events", [])
            except Exception:
                events = []
            for event in events[-lines:]:
                print(f"  | {event['message'].rstrip()}", file=out)
            if events:
                print(f"  (last {min(lines, len(events))} lines of {group}; more: make logs MODEL={model.name})",
                      file=out)
    print("\nThe failed stack keeps its resources so these logs stay readable. Fix the cause and run make deploy "
          "again, or run make destroy: it removes everything, failed deploys included.", file=out)


def main(argv=None, run: Callable = cdk.run_cdk, session=None, clients_factory=preflight.Clients,
         out=sys.stdout) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    skip = "--skip-preflight" in argv
    cdk_args = [a for a in argv if a != "--skip-preflight"]
    try:
        settings = load_settings(cdk.context_pairs(cdk_args))
    except SettingsError as error:
        print(error, file=out)
        return 2
    if not skip:
        print("preflight (make deploy SKIP_PREFLIGHT=1 skips it):", file=out, flush=True)
        checks = preflight.run(settings, clients_factory(cdk.cli_region(settings.region)))
        print(preflight.render(checks) + "\n", file=out, flush=True)
        if any(c.status == preflight.BLOCK for c in checks):
            return 1
    else:  # what preflight would warn of without asking AWS: said even when the rest is skipped
        warnings = preflight.unwatched_spend(settings)
        if warnings:
            print(preflight.render(warnings).rsplit("\n\n", 1)[0] + "\n", file=out, flush=True)
    models = [m.name for m in settings.catalog if m.existing_endpoint is None]
    if models:
        print(f"The endpoint takes minutes to start; to watch it: make logs MODEL={models[0]} (another terminal)",
              file=out, flush=True)
    code = run("deploy", settings.stack_name, ["--no-rollback", *cdk_args])
    if code != 0:
        print(f"\nmake deploy: cdk deploy failed (exit {code}).", file=out)
        explain_failure(settings, session or cdk.session(settings.region), out=out)
    return code


if __name__ == "__main__":
    sys.exit(main())
