"""Local mode: `python -m local` (or `make local`) serves the deployed API on 127.0.0.1 with no AWS account.

Three servers, all on loopback: a local SageMaker endpoint running models/stable_diffusion/code/inference.py through
the real inference toolkit, moto's S3 so presigned URLs download real images, and an API Gateway stand-in calling
the unchanged Lambda handler. Settings come from cdk.json and `-c name=value`, as for `cdk synth`.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from model_api.app import ModelApp, configure_logging

from deployment.hosting import HOSTING_MODES, JOB_PREFIX, hosting_of
from deployment.lambda_source import ROOT
from deployment.settings import Settings, SettingsError, load_settings

HOST = "127.0.0.1"  # loopback only: local mode is never reachable from the network
BUCKET = "local-images"
REGION = "us-east-1"
# The read-only role URLs are signed as (moto's STS lets any role be assumed; on AWS it is the stack's UrlSigner).
SIGNER_ROLE_ARN = "arn:aws:iam::123456789012:role/local-url-signer"
DEFAULT_CACHE = ROOT / ".local"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000; 0 picks a free one)")
    # The S3 and SageMaker stand-ins take free ports unless told: only the API's port is one a person types, so a
    # second run, or another program on 8001/8002, never stops local mode from starting.
    parser.add_argument("--s3-port", type=int, default=0, help="local S3 port (default 0: a free one; the banner and "
                                                               "the ready file say which)")
    parser.add_argument("--endpoint-port", type=int, default=0, help="local SageMaker endpoint port (default 0: a "
                                                                     "free one)")
    parser.add_argument("--api-key", default=None, help="API key to require (default: a new random key)")
    parser.add_argument("--model-dir", action="append", default=[], metavar="[MODEL=]DIR",
                        help="serve real weights from DIR for MODEL (default: the first model)")
    parser.add_argument("--model-id", action="append", default=[], metavar="[MODEL=]ID",
                        help="download a Hugging Face Hub model for MODEL (needs access to the Hub)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting, as with `cdk synth -c` (e.g. -c url_ttl_seconds=600)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the tiny model is cached")
    parser.add_argument("--ready-file", type=Path,
                        help="write the URLs and key here as JSON once serving, removed on exit (default "
                             "<cache dir>/ready.json: make batch LOCAL=1 reads it)")
    parser.add_argument("--request-timeout", type=float, default=10,
                        help="seconds a client has to send its whole request, line, headers and body (default 10; "
                             "then 408)")
    parser.add_argument("--max-connections", type=int, default=128,
                        help="connections the API serves at once (default 128); more are answered 503 at once")
    parser.add_argument("--verbose", action="store_true",
                        help="also print each request's full JSON log line (as CloudWatch has it) on the console, "
                             "beside the short line")
    parser.add_argument("--log-file", type=Path,
                        help="where each request's full JSON log line goes (default <cache dir>/requests.log)")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds to wait for a model answer (default 900: CPU inference with real weights is "
                             "slow, and there is no API Gateway 29 s limit here)")
    return parser.parse_args(argv)


# Over this, the default image is too slow for a first try: the banner's example asks for a small one.
QUICK_TRY_SECONDS = 10.0


def try_body(action, estimate: float | None, settings) -> str:
    """The banner's example body: the action's own, or, when its default image takes over QUICK_TRY_SECONDS here,
    the smallest image with few steps (a first curl should answer in seconds)."""
    if estimate is None or estimate <= QUICK_TRY_SECONDS:
        return action.example
    small = {**json.loads(action.example), "width": settings.limits.min_size, "height": settings.limits.min_size,
             "steps": min(4, settings.limits.max_steps)}
    return json.dumps(small)


def hosting_summary(model) -> str:
    """How a model is hosted once deployed, in a few words (local mode runs every mode on one local worker)."""
    return hosting_of(model).summary()


def batch_model_name(info) -> str:
    """The local name of a model's batch model (on AWS CloudFormation names it; the ready file says which)."""
    return f"{info.endpoint_name}-batch"[:63]


def read_settings(pairs: list[str]) -> Settings:
    return load_settings(pairs)


def write_private(path: Path, text: str) -> None:
    """Write text to path, readable and writable by its owner only (0600, set at creation: never readable by others
    in between), replacing what is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def busy_port(port: int, what: str, flag: str) -> str:
    """What a port already in use says: how to pick another, in the make form people run."""
    return (f"local: port {port} on {HOST} ({what}) is already in use (another make local?); pick another: make "
            f"local LOCAL_ARGS=\"{flag} 9000\" (python -m local {flag} 9000; 0 picks a free one)")


def bind(server_class, port: int, what: str, flag: str, *args):
    try:
        return server_class((HOST, port), *args)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SystemExit(busy_port(port, what, flag)) from None
        raise


def _per_model(values: list[str], catalog, what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep:
            name, rest = catalog[0].name, value
        if name not in {m.name for m in catalog}:
            raise SystemExit(f"local: {what} names model {name!r}, which models does not select")
        out[name] = rest
    return out


def tiny_weights(model, cache_dir: Path) -> tuple[Path, str]:
    """Offline weights that fit a model's kind: built once and cached, or shipped by a package."""
    from model_api.kinds import KINDS

    from local import tiny_models

    kind = KINDS[model.kind]
    stand_in = tiny_models.STAND_INS[kind.local_stand_in(model) if kind.local_stand_in else "causal-lm"]
    if stand_in.shipped is not None:
        return stand_in.shipped(), stand_in.description
    folder, build, description = cache_dir / "models" / stand_in.folder_name, stand_in.build, stand_in.description
    if not (folder / "config.json").is_file() and not (folder / "model_index.json").is_file():
        print(f"local: building {description.split(':')[0]} (first run only)...", flush=True)
        build(folder)
    return folder, description


def model_weights(model, dirs: dict, ids: dict, cache_dir: Path) -> tuple[Path | None, str]:
    """(weights folder, what it is); None when the model's own code downloads from the Hub (as on SageMaker)."""
    if model.name in dirs:
        folder = Path(dirs[model.name])
        if not folder.is_dir():
            raise SystemExit(f"local: --model-dir {folder} is not a folder")
        return folder, f"weights from {folder}"
    if model.name in ids and model.code_downloads:
        return None, f"{ids[model.name]} from the Hugging Face Hub, only the files the pipeline needs (its code's " \
                     f"own download, as on SageMaker)"
    if model.name in ids:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(ids[model.name])), f"{ids[model.name]} from the Hugging Face Hub"
        except Exception as error:  # offline, gated, missing: say so plainly
            raise SystemExit(f"local: could not download {ids[model.name]}: {error}") from None
    return tiny_weights(model, cache_dir)


def container_environment(model, settings: Settings | None, request_seconds: int) -> dict:
    """What the stack puts in the model container's environment for its inference code (the kind's bounds: the
    image limits SD_MAX_*, the request deadline), here with local mode's own wait for the model: the container
    stops one second after its Lambda stops waiting (stacks/model_api_stack.py, as deployed)."""
    from model_api.kinds import KINDS

    kind = KINDS[model.kind]
    if settings is None or kind.container_environment is None:
        return {}
    return kind.container_environment(settings, model, request_seconds + 1)


def local_model(model, weights: Path | None, cache_dir: Path, hub_id: str | None = None,
                settings: Settings | None = None, request_seconds: int = 900):
    """The model served the way its container would serve it. weights None: its code downloads hub_id. settings:
    the deployment's, for the container's bounds (container_environment)."""
    from local.tgi import TgiModel
    from local.toolkit import ToolkitModel

    # The container stops one second after its Lambda stops waiting (container_environment): so does the worker.
    deadline = request_seconds + 1
    if model.container == "tgi":
        return TgiModel(weights, max_input_tokens=model.max_input_tokens, max_total_tokens=model.max_total_tokens,
                        deadline_seconds=deadline)
    if model.code:
        environment = {"ALLOW_PICKLE_WEIGHTS": "true" if model.allow_pickle_weights else None,
                       **container_environment(model, settings, request_seconds)}
        if weights is None:
            environment.update({"MODEL_HUB_ID": hub_id, "MODEL_HUB_REVISION": model.revision,
                                "MODEL_DOWNLOAD_DIR": str(cache_dir / "hub")})
        return ToolkitModel(staged_model_dir(model, weights, cache_dir), environment=environment,
                            deadline_seconds=deadline)
    return ToolkitModel(weights, task=model.task, deadline_seconds=deadline)


def staged_model_dir(model, weights: Path | None, cache_dir: Path) -> Path:
    """weights + the model's code/ from the repo, the layout the container sees: links, so code edits apply on
    restart."""
    stage = cache_dir / "run" / model.name
    stage.mkdir(parents=True, exist_ok=True)
    for entry in stage.iterdir():
        if entry.is_symlink():
            entry.unlink()
    for entry in (weights.iterdir() if weights is not None else ()):
        if entry.name != "code":
            (stage / entry.name).symlink_to(entry.resolve())
    (stage / "code").symlink_to(model.code_dir.resolve())
    return stage


def image_time_estimate(served_model, limits) -> tuple[float, str]:
    """Time one denoising step of a default-size image on this machine, and say what the default request takes
    (a real model on a laptop CPU takes minutes: better said at start than discovered at the first curl)."""
    import time

    size = limits.default_size

    def seconds(steps: int) -> float:
        body = json.dumps({"inputs": "timing", "parameters": {"width": size, "height": size,
                                                              "num_inference_steps": steps, "seed": 0}}).encode()
        started = time.perf_counter()
        served_model.invoke(body, "application/json", "image/png")
        return time.perf_counter() - started

    seconds(1)  # the first call warms up (memory, kernels) and would overstate everything
    # The fastest of two runs each (a busy moment inflates one run, never the fastest): the steps' cost is the
    # difference of 1 and 5 steps, the rest (encode, decode, PNG) fixed. The model runs on its one worker thread,
    # as every request does (local.toolkit.ModelWorker). Never more steps than the container allows (SD_MAX_STEPS,
    # the deployment's max_steps): with one, the whole first call counts as its step.
    more = min(5, limits.max_steps)
    one = min(seconds(1), seconds(1))
    many = min(seconds(more), seconds(more)) if more > 1 else one
    step = max((many - one) / (more - 1), 0.0) if more > 1 else one
    total = max(one - step, 0.0) + step * limits.default_steps
    note = "" if total < 5 else "  (slow on CPU: lower steps and size per request, or use --model-dir on a GPU)"
    return total, f"on this machine: {size}x{size}, {limits.default_steps} steps ≈ {total:.1f} s per image{note}"


def start_s3(port: int, credentials):
    """moto's S3 and STS on loopback, behind the signature checks S3 makes (local.s3_auth): only `credentials` (an
    IssuedCredentials) sign for it."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from local.s3_auth import PresignedUrlCheck

    # werkzeug logs every request line, presigned URLs included: URLs are never printed (docs/security.md).
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        # S3's own checks of presigned URLs and anonymous requests, in front of moto's (which has none).
        server = make_server(HOST, port, PresignedUrlCheck(DomainDispatcherApplication(create_backend_app),
                                                           secret_for=credentials),
                             threaded=True, request_handler=MotoRequestHandler)
    except (OSError, SystemExit):
        raise SystemExit(busy_port(port, "S3", "--s3-port")) from None
    threading.Thread(target=server.serve_forever, daemon=True, name="s3").start()
    return server


def main(argv=None) -> int:
    args = parse_args(argv)
    for flag, port in (("--port", args.port), ("--s3-port", args.s3_port), ("--endpoint-port", args.endpoint_port)):
        if not 0 <= port <= 65535:
            print(f"local: {flag} {port}: port {port} is not a port number (0-65535)", file=sys.stderr)
            return 2
    try:
        settings = read_settings(args.context)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "0" if args.model_id else "1")
    # A quiet console: no third-party progress bars or advice; local mode prints its banner and one line a request.
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("DIFFUSERS_VERBOSITY", "error"), ("TQDM_DISABLE", "1"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # torch keeps a compile cache in /tmp/torchinductor_<user> unless told otherwise: keep it with ours.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(args.cache_dir).resolve() / "torchinductor"))

    from local.endpoint import EndpointServer
    from local.gateway import GatewayServer, LocalGateway

    # This run's own credentials, random: the local S3, STS and SageMaker stand-ins accept only them (and the sessions
    # STS issues with them), never the made-up ones a client may have in its environment.
    from local.s3_auth import IssuedCredentials

    credentials = IssuedCredentials("LOCAL" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30))
    # Bind every port first, so a busy port is reported before minutes of model loading.
    gateway_server = bind(GatewayServer, args.port, "API", "--port", None, args.request_timeout,
                          args.max_connections)
    # The endpoint's callers are the API's requests (at most max_connections) and make batch: room for both.
    endpoint_token = secrets.token_urlsafe(24)  # the container contract's /invocations takes it (or a signature)
    endpoint_server = bind(EndpointServer, args.endpoint_port, "SageMaker endpoint", "--endpoint-port", credentials,
                           args.request_timeout, 2 * args.max_connections, endpoint_token)
    s3_server = start_s3(args.s3_port, credentials)
    servers = [gateway_server, endpoint_server, s3_server]
    api_url = f"http://{HOST}:{gateway_server.server_address[1]}"
    s3_url = f"http://{HOST}:{s3_server.server_address[1]}"
    endpoint_url = f"http://{HOST}:{endpoint_server.server_address[1]}"
    for server in (gateway_server, endpoint_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()

    ready_file = args.ready_file or Path(args.cache_dir) / "ready.json"
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        from model_api import routes as api_routes

        catalog = settings.catalog
        dirs = _per_model(args.model_dir, catalog, "--model-dir")
        ids = _per_model(args.model_id, catalog, "--model-id")
        infos = settings.model_infos()
        served = []
        estimates: dict[str, float] = {}  # model -> seconds its default image takes here
        for model, info in zip(catalog, infos):
            if model.existing_endpoint is not None:
                served.append(f"  {model.name}: not served (an existing endpoint; its routes answer 503 here)")
                continue
            weights, description = model_weights(model, dirs, ids, args.cache_dir)
            served_as = f"{info.endpoint_name}/{info.component}" if info.component else info.endpoint_name
            endpoint_server.models[served_as] = local_model(model, weights, args.cache_dir, ids.get(model.name),
                                                            settings, args.timeout)
            if model.batch:  # transform jobs on its batch model run on the same local worker
                endpoint_server.transforms.models[batch_model_name(info)] = endpoint_server.models[served_as]
            takes_jobs = HOSTING_MODES[model.hosting].takes_jobs
            if takes_jobs:  # the stack's AsyncInferenceConfig paths (stacks/image_bucket.py)
                endpoint_server.async_paths[info.endpoint_name] = (
                    f"s3://{BUCKET}/{JOB_PREFIX}output/{model.name}", f"s3://{BUCKET}/{JOB_PREFIX}failures/{model.name}")
            served.append(f"  {model.name} ({model.kind}): {description}")
            if takes_jobs:
                served.append(f"    hosted {hosting_summary(model)} on AWS; here jobs run in the background on one "
                              "local worker (POST answers 202, poll GET /jobs/<job_id>)")
            elif hosting_summary(model):
                served.append(f"    hosted {hosting_summary(model)} on AWS; here one local worker serves it the "
                              "same way")
            if settings.stores_images(model) and model.container != "tgi":
                seconds, words = image_time_estimate(endpoint_server.models[served_as], settings.limits)
                estimates[model.name] = seconds
                served.append("    " + words)

        if settings.auth != "api_key":
            served.append(f"  auth={settings.auth} is checked by API Gateway only: local mode asks for the API key "
                          "instead (x-api-key or Authorization: Bearer)")
        if settings.in_vpc or any(m.network_isolation for m in catalog):
            served.append("  private networking (vpc, network_isolation) is AWS only: local mode runs no VPC")
        # This run's credentials: requests are signed as on AWS, and only ever sent to these loopback servers.
        base_environment = {
            "AWS_ACCESS_KEY_ID": credentials.access_key_id, "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_S3": s3_url, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
            "AWS_ENDPOINT_URL_STS": s3_url,  # moto's server answers STS too: the URL signer's AssumeRole
            "S3_ADDRESSING_STYLE": "path", "BUCKET_NAME": BUCKET, "SIGNER_ROLE_ARN": SIGNER_ROLE_ARN,
            # What Lambda sets from the function's logging config (stacks/model_function.py).
            "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": settings.log_level,
        }
        # The handlers' log lines as Lambda's JSON log format writes them to CloudWatch: the same line, metrics
        # (EMF) included, on this console.
        from model_api.log_json import LambdaJsonFormatter

        # The console has the gateway's short line per request; the full line goes to the log file (and with
        # --verbose to the console too), where no one reads it by accident.
        log_file = args.log_file or Path(args.cache_dir) / "requests.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        api_log = logging.getLogger("model_api")
        for handler in [logging.FileHandler(log_file, encoding="utf-8"),
                        *([logging.StreamHandler(sys.stderr)] if args.verbose else [])]:
            handler.setFormatter(LambdaJsonFormatter())
            api_log.addHandler(handler)
        api_log.propagate = False
        # This process's credentials, once (boto3 reads them from the environment, as in a Lambda); everything else
        # each model's app is given in its own environment.
        os.environ.update({k: base_environment[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                             "AWS_REGION", "AWS_DEFAULT_REGION")})
        os.environ.pop("AWS_SESSION_TOKEN", None)
        configure_logging(base_environment)
        handlers = {}
        for model in catalog:
            # The deployed function's environment, with local mode's own model timeout (no 29 s gateway here): one
            # app per model, as one function per model is deployed.
            app = ModelApp({**settings.function_environment(model), **base_environment,
                            "INVOKE_READ_TIMEOUT_SECONDS": str(args.timeout)})
            handlers[model.name] = app.stream if model.streaming else app.handle
        import boto3
        from botocore.config import Config

        boto3.client("s3", region_name=REGION, endpoint_url=s3_url, aws_access_key_id=credentials.access_key_id,
                     aws_secret_access_key=credentials.secret_access_key).create_bucket(Bucket=BUCKET)
        # Async jobs read their requests and write their answers as SageMaker does: signed S3 calls.
        endpoint_server.s3 = endpoint_server.transforms.s3 = boto3.client(
            "s3", region_name=REGION, endpoint_url=s3_url, aws_access_key_id=base_environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=base_environment["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
        routes = api_routes.routes(infos)
        api_key = args.api_key or secrets.token_hex(16)
        gateway_server.gateway = LocalGateway(handlers, api_key, routes, openapi=settings.openapi_json(),
                                              cors_origins=settings.cors_origin_list,
                                              bearer_keys=settings.bearer_keys or settings.auth != "api_key")

        # Before the banner: whoever reads the banner may read this at once. It holds the key and this run's
        # credentials: readable by its owner only.
        write_private(ready_file, json.dumps({
            "api_url": api_url, "api_key": api_key, "s3_url": s3_url, "endpoint_url": endpoint_url,
            "endpoint_token": endpoint_token,
            "endpoints": {i.name: i.endpoint_name for i in infos}, "bucket": BUCKET, "region": REGION,
            "signer_role_arn": SIGNER_ROLE_ARN,
            "credentials": {"access_key_id": credentials.access_key_id,
                            "secret_access_key": credentials.secret_access_key},
            "batch": {m.name: {"model_name": batch_model_name(i), "job_prefix": settings.batch_job_prefix(m)}
                      for m, i in zip(catalog, infos) if m.batch}}))
        paths = sorted({f"{r.method} {r.path}" for r in routes}, key=lambda p: (p.split()[1], p))
        first = infos[0]
        action = api_routes.main_action(first.kind)
        print("\nLocal Model API is serving:\n" + "\n".join(served) + "\n\n"
              f"  API:        {api_url}   routes: {', '.join(paths)}\n"
              f"  API key:    {api_key}\n"
              f"  S3:         {s3_url} (bucket {BUCKET}; presigned URLs point here)\n"
              f"  SageMaker:  {endpoint_url} (/endpoints/<name>/invocations; /ping, /invocations)\n\n"
              f"Try:\n  curl -s -H 'x-api-key: {api_key}' -d '{try_body(action, estimates.get(first.name), settings)}' "
              f"{api_url}{action.short_path}\n"
              + (f"  OpenAI SDK: OpenAI(base_url='{api_url}/v1', api_key='{api_key}')\n"
                 if api_routes.openai_models(infos) else "") + "\n"
              f"Each request's full log line (JSON, as CloudWatch has it): {log_file}"
              + ("" if args.verbose else " (--verbose prints them here too)") + "\n"
              "Ctrl-C stops everything.", flush=True)
        while not stop.wait(0.5):
            pass
        print("\nlocal: stopping", flush=True)
        return 0
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        ready_file.unlink(missing_ok=True)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: request threads may still be inside torch, whose thread pools abort the process
    # ("terminate called without an active exception") when destroyed under them. Every server is shut down.
    os._exit(code)
