"""Local mode: `python -m local` (or `make local`) serves the deployed API on 127.0.0.1 with no AWS account.

Three servers, all on loopback: a local SageMaker endpoint running models/stable_diffusion/code/inference.py through
the real inference toolkit, moto's S3 so presigned URLs download real images, and an API Gateway stand-in calling
the unchanged Lambda handler. Settings come from cdk.json and `-c name=value`, as for `cdk synth`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "lambda")) if p not in sys.path]

from stacks.lambda_source import LAMBDA_DIR, MODELS_DIR  # noqa: E402
from stacks.settings import Settings, SettingsError, setting_values  # noqa: E402

HOST = "127.0.0.1"  # loopback only: local mode is never reachable from the network
BUCKET = "local-images"
REGION = "us-east-1"
DEFAULT_CACHE = ROOT / ".local"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000; 0 picks a free one)")
    parser.add_argument("--s3-port", type=int, default=8001, help="local S3 port (default 8001)")
    parser.add_argument("--endpoint-port", type=int, default=8002, help="local SageMaker endpoint port (default 8002)")
    parser.add_argument("--api-key", default=None, help="API key to require (default: a new random key)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model-dir", type=Path, help="a diffusers Stable Diffusion folder with real weights")
    source.add_argument("--model-id", help="a Hugging Face Hub id to download (needs access to the Hub)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting, as with `cdk synth -c` (e.g. -c url_ttl_seconds=600)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the tiny model is cached")
    parser.add_argument("--ready-file", type=Path, help="write the URLs and key here as JSON once serving")
    return parser.parse_args(argv)


def read_settings(pairs: list[str]) -> Settings:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SettingsError([f"-c {pair!r}: expected NAME=VALUE"])
        context[name.strip()] = value
    return Settings.from_values(setting_values(context))


def bind(server_class, port: int, what: str, flag: str, *args):
    try:
        return server_class((HOST, port), *args)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SystemExit(f"local: port {port} on {HOST} ({what}) is already in use; "
                             f"pick another with {flag} PORT (0 picks a free one)") from None
        raise


def model_folder(args) -> tuple[Path, str]:
    """The weights to serve and a description of them."""
    if args.model_dir:
        if not (args.model_dir / "model_index.json").is_file():
            raise SystemExit(f"local: {args.model_dir} is not a diffusers pipeline folder (no model_index.json)")
        return args.model_dir, f"weights from {args.model_dir}"
    if args.model_id:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(args.model_id)), f"{args.model_id} from the Hugging Face Hub"
        except Exception as error:  # offline, gated, missing: say so plainly
            raise SystemExit(f"local: could not download {args.model_id}: {error}") from None
    from local.tiny_models import build_tiny_stable_diffusion

    folder = args.cache_dir / "models" / "tiny-stable-diffusion"
    if not (folder / "model_index.json").is_file():
        print("local: building a tiny random-weight Stable Diffusion model (first run only)...", flush=True)
        build_tiny_stable_diffusion(folder)
    return folder, "a tiny RANDOM-WEIGHT model: it draws noise, not pictures (use --model-dir for real weights)"


def staged_model_dir(weights: Path, cache_dir: Path) -> Path:
    """weights + code/ from the repo, the layout the container sees: links, so code edits apply on restart."""
    stage = cache_dir / "run" / "stable_diffusion"
    stage.mkdir(parents=True, exist_ok=True)
    for entry in stage.iterdir():
        if entry.is_symlink():
            entry.unlink()
    for entry in weights.iterdir():
        if entry.name != "code":
            (stage / entry.name).symlink_to(entry.resolve())
    (stage / "code").symlink_to((MODELS_DIR / "stable_diffusion" / "code").resolve())
    return stage


def start_s3(port: int):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    try:
        server = make_server(HOST, port, DomainDispatcherApplication(create_backend_app), threaded=True,
                             request_handler=MotoRequestHandler)
    except (OSError, SystemExit) as error:
        raise SystemExit(f"local: port {port} on {HOST} (S3) is already in use; pick another with --s3-port "
                         f"PORT (0 picks a free one) [{error}]") from None
    threading.Thread(target=server.serve_forever, daemon=True, name="s3").start()
    return server


def load_handler(environment: dict):
    import importlib.util

    os.environ.update(environment)
    spec = importlib.util.spec_from_file_location("lambda_handler", LAMBDA_DIR / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        settings = read_settings(args.context)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "0" if args.model_id else "1")

    from local.endpoint import EndpointServer
    from local.gateway import GatewayServer, LocalGateway

    # Bind every port first, so a busy port is reported before minutes of model loading.
    gateway_server = bind(GatewayServer, args.port, "API", "--port")
    endpoint_server = bind(EndpointServer, args.endpoint_port, "SageMaker endpoint", "--endpoint-port", None,
                           settings.endpoint_name)
    s3_server = start_s3(args.s3_port)
    servers = [gateway_server, endpoint_server, s3_server]
    api_url = f"http://{HOST}:{gateway_server.server_address[1]}"
    s3_url = f"http://{HOST}:{s3_server.server_address[1]}"
    endpoint_url = f"http://{HOST}:{endpoint_server.server_address[1]}"
    for server in (gateway_server, endpoint_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        from local.toolkit import ToolkitModel
        from model_api.images import ImageConfig

        weights, description = model_folder(args)
        endpoint_server.model = ToolkitModel(staged_model_dir(weights, args.cache_dir))

        # Fake credentials: requests are signed as on AWS, and only ever sent to these loopback servers.
        environment = {
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local",
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_S3": s3_url, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
            "S3_ADDRESSING_STYLE": "path",
            "ENDPOINT_NAME": settings.endpoint_name, "BUCKET_NAME": BUCKET,
            "INVOKE_READ_TIMEOUT_SECONDS": str(settings.invoke_read_timeout_seconds),
            **ImageConfig(settings.url_ttl_seconds, settings.limits).to_env(),
        }
        handler = load_handler(environment)
        import boto3

        boto3.client("s3", region_name=REGION, endpoint_url=s3_url).create_bucket(Bucket=BUCKET)
        api_key = args.api_key or secrets.token_urlsafe(24)
        gateway_server.gateway = LocalGateway(handler.handler, api_key, settings.limits)

        if args.ready_file:  # before the banner: whoever reads the banner may read this at once
            args.ready_file.write_text(json.dumps({"api_url": api_url, "api_key": api_key, "s3_url": s3_url,
                                                   "endpoint_url": endpoint_url,
                                                   "endpoint_name": settings.endpoint_name}))
        print(f"\nLocal Model API is serving {description}.\n"
              f"  API:        {api_url}/images   (POST JSON or GET ?prompt=...)\n"
              f"  API key:    {api_key}\n"
              f"  S3:         {s3_url} (bucket {BUCKET}; presigned URLs point here)\n"
              f"  SageMaker:  {endpoint_url} (endpoint {settings.endpoint_name}; /ping, /invocations)\n\n"
              f"Try:\n  curl -s -H 'x-api-key: {api_key}' -d '{{\"prompt\":\"a cyborg tiger\"}}' {api_url}/images\n\n"
              "Ctrl-C stops everything.", flush=True)
        while not stop.wait(0.5):
            pass
        print("\nlocal: stopping", flush=True)
        return 0
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    sys.exit(main())
