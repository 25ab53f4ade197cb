"""Benchmarks of the request path, cold start, payloads, synth, tests, local mode and (on a GPU) model serving.

`make bench` (or `.venv/bin/python bench/run.py`). This machine is shared and noisy: every figure is a median of
repeated runs, compared side by side in the same run as a ratio; absolute times are for orientation only.
Everything is offline: S3 is moto on 127.0.0.1, the SageMaker endpoint is faked at the botocore level.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambda"), str(ROOT / "tests" / "lambda"), str(ROOT / "tests" / "local")]
os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
                   "AWS_EC2_METADATA_DISABLED": "true", "HF_HUB_OFFLINE": "1",
                   "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1",
                   "CDK_DISABLE_CLI_TELEMETRY": "true"})
REGION = "us-east-1"
rows: list[tuple[str, str, str, str]] = []  # (measure, value, target, verdict)


def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def row(measure: str, value: str, target: str = "", met: bool | None = None) -> None:
    verdict = "" if met is None else ("met" if met else "NOT met")
    rows.append((measure, value, target, verdict))
    print(f"  {measure}: {value} {('(target ' + target + ': ' + verdict + ')') if target else ''}", flush=True)


def sd_like_png(size: int = 512, seed: int = 0) -> bytes:
    """A PNG with the size and entropy of a generated picture: smooth colour fields with fine noise (pure noise
    compresses far worse than any real image, a flat colour far better)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((size, size), Image.BICUBIC), dtype=np.int16)
    noisy = np.clip(smooth + rng.integers(-6, 7, smooth.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------------ glue


def s3_server(kind: str, latency_ms: float = 20):
    """An S3 on loopback in its own process: moto (CPU-bound) or the latency stand-in; (process, url)."""
    if kind == "moto":
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        import boto3
        from botocore.exceptions import EndpointConnectionError

        client = boto3.client("s3", region_name=REGION, endpoint_url=url)
        for _ in range(300):  # until moto listens
            try:
                client.create_bucket(Bucket="bench-images")
                break
            except EndpointConnectionError:
                time.sleep(0.05)
        return process, url
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "s3_standin.py"), "--latency-ms",
                                str(latency_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return process, f"http://127.0.0.1:{process.stdout.readline().strip()}"


def glue(runs: int, kind: str, judge: bool, latency_ms: float = 20) -> None:
    from lambda_rig import IMAGE_MODEL, FakeEndpoint, load_handler

    process, s3_url = s3_server(kind, latency_ms)
    bucket = "bench-images"
    handler = load_handler({"AWS_REGION": REGION, "ENDPOINT_NAME": "bench", "BUCKET_NAME": bucket, **IMAGE_MODEL,
                            "AWS_ENDPOINT_URL_S3": s3_url, "S3_ADDRESSING_STYLE": "path", "MODEL_CATALOG": ""})
    # The URL signer assumes its role once per ~40 minutes, not per request: answer that one STS call here (the S3
    # stand-in speaks no STS), so the rounds measure what every request does.
    handler.store.signer._sts = SimpleNamespace(assume_role=lambda **_: {"Credentials": {
        "AccessKeyId": "ASIABENCH", "SecretAccessKey": "bench", "SessionToken": "bench",
        "Expiration": datetime.now().astimezone() + timedelta(hours=1)}})
    endpoint = FakeEndpoint(handler.endpoint._client)
    png = sd_like_png()
    pngs4 = [sd_like_png(seed=i) for i in range(4)]
    # The endpoint's answers are encoded once, up front: encoding them is the GPU instance's work, not the Lambda's.
    json1 = json.dumps({"generated_images": [base64.b64encode(png).decode()], "prompt": "p"}).encode()
    event = {"resource": "/images", "httpMethod": "POST", "isBase64Encoded": False,
             "body": json.dumps({"prompt": "a cyborg tiger", "seed": 1})}
    event4 = {**event, "body": json.dumps({"prompt": "a cyborg tiger", "seed": 1, "num_images": 4})}
    context = SimpleNamespace(aws_request_id="bench")
    s3, runtime = handler.store.client, handler.endpoint._client

    def ours():
        endpoint.returns(png)
        assert handler.handle(event, context)["statusCode"] == 200

    def ours4():
        # Four images as our inference code answers them (models/stable_diffusion/code: raw PNGs back to back,
        # Accept application/x-png-sequence), not as the base64 JSON of a JumpStart endpoint.
        endpoint.returns_png_sequence(pngs4)
        assert handler.handle(event4, context)["statusCode"] == 200

    def minimum():
        key = f"images/{uuid.uuid4()}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=png, ContentType="image/png")
        s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=900)

    def classic():
        """The classic tutorial: JSON with base64 images from the endpoint, decode, timestamp keys."""
        endpoint.returns(json1, "application/json")
        response = runtime.invoke_endpoint(EndpointName="bench", ContentType="application/json",
                                           Accept="application/json",
                                           Body=json.dumps({"inputs": "a cyborg tiger"}))
        images = json.loads(response["Body"].read().decode("utf-8"))["generated_images"]
        urls = []
        for image in images:
            key = f"image_{datetime.now().strftime('%Y%m%d%H%M%S')}.png"
            s3.put_object(Bucket=bucket, Key=key, Body=base64.b64decode(image))
            urls.append(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                  ExpiresIn=3600))
        return {"statusCode": 200, "body": json.dumps({"images": urls})}

    # Interleave the contenders round by round, so drift in machine load hits them alike.
    contenders = (("ours", ours), ("minimum", minimum), ("classic", classic), ("ours4", ours4))
    results = {name: [] for name, _ in contenders}
    for _, fn in contenders:
        for _ in range(3):
            fn()
    for _ in range(runs):
        for name, fn in contenders:
            started = time.perf_counter()
            fn()
            results[name].append((time.perf_counter() - started) * 1000)
    med = {name: statistics.median(values) for name, values in results.items()}
    process.kill()
    process.wait()
    label = f"S3 stand-in, {latency_ms:.0f} ms latency" if kind == "standin" else "S3 = moto (CPU-bound)"
    print(f"  [{label}] medians over {runs} rounds: ours {med['ours']:.1f} ms, minimum {med['minimum']:.1f} ms, "
          f"classic {med['classic']:.1f} ms, ours x4 {med['ours4']:.1f} ms; image {len(png)} bytes")
    target = (lambda t: t) if judge else (lambda t: "")
    met = (lambda ok: ok) if judge else (lambda ok: None)
    ratio = med["ours"] / med["minimum"]
    row(f"glue, 1 image: ours / minimum (PUT + presign) [{label}]", f"{ratio:.2f}x", target("<= 1.2x"),
        met(ratio <= 1.2))
    ratio = med["classic"] / med["ours"]
    row(f"glue, 1 image: classic tutorial / ours [{label}]", f"{ratio:.2f}x", target("> 1.0x"), met(ratio > 1.0))
    ratio = med["ours4"] / med["ours"]
    row(f"glue, 4 images / 1 image [{label}]", f"{ratio:.2f}x", target("<= 1.5x"), met(ratio <= 1.5))
    if judge:
        row("payload per image, endpoint to Lambda: raw PNG (ours, 1 image or several back to back)",
            f"{len(png)} bytes")
        row("payload per image, endpoint to Lambda: base64 JSON (classic tutorial, JumpStart)",
            f"{len(json1)} bytes ({len(json1) / len(png):.2f}x)")


def async_jobs(runs: int, latency_ms: float = 20) -> None:
    """hosting=async: the 202 of a submit against its floor (one S3 PUT of the input + one InvokeEndpointAsync), and
    the poll of a finished job against its floor (one HEAD + a presign per image), same S3 stand-in as the glue."""
    from lambda_rig import IMAGE_MODEL, FakeAsyncEndpoint, load_handler
    from model_api.routes import ModelInfo, catalog_to_json

    process, s3_url = s3_server("standin", latency_ms)
    bucket = "bench-images"
    catalog = catalog_to_json([ModelInfo("stable-diffusion", "text-to-image", "bench", "ml.g5.xlarge", "async")])
    handler = load_handler({"AWS_REGION": REGION, "ENDPOINT_NAME": "bench", "BUCKET_NAME": bucket, **IMAGE_MODEL,
                            "AWS_ENDPOINT_URL_S3": s3_url, "S3_ADDRESSING_STYLE": "path", "MODEL_CATALOG": catalog,
                            "MODEL_HOSTING": "async"})
    handler.store.signer._sts = SimpleNamespace(assume_role=lambda **_: {"Credentials": {
        "AccessKeyId": "ASIABENCH", "SecretAccessKey": "bench", "SessionToken": "bench",
        "Expiration": datetime.now().astimezone() + timedelta(hours=1)}})
    FakeAsyncEndpoint(handler.endpoint._client, bucket)
    s3, runtime = handler.store.client, handler.endpoint._client
    signer = handler.store.signing_client
    context = SimpleNamespace(aws_request_id="bench")
    submit_event = {"resource": "/images", "httpMethod": "POST", "isBase64Encoded": False,
                    "body": json.dumps({"prompt": "a cyborg tiger", "seed": 1}), "requestContext": {}}
    # A finished job, as the first poll that saw SageMaker's answer leaves it.
    job_id, key = "0" * 32, "images/2026/11/24/" + "0" * 32 + "-0.png"
    s3.put_object(Bucket=bucket, Key=key, Body=sd_like_png())
    s3.put_object(Bucket=bucket, Key=f"jobs/{job_id}/result.json", Body=json.dumps({
        "record": {"job_id": job_id, "model": "stable-diffusion", "action": "images", "accept": "image/png",
                   "created_at": "2026-11-24T12:00:00Z", "request_id": "r", "meta": {"seed": 1, "num_images": 1}},
        "result": {"keys": [key], "prompt": "a cyborg tiger", "seed": 1}}).encode())
    poll_event = {"resource": "/jobs/{job_id}", "httpMethod": "GET", "pathParameters": {"job_id": job_id},
                  "requestContext": {}}

    def submit():
        assert handler.handle(submit_event, context)["statusCode"] == 202

    def submit_floor():
        job = uuid.uuid4().hex
        s3.put_object(Bucket=bucket, Key=f"jobs/{job}/input.json", Body=b'{"inputs": "a cyborg tiger"}',
                      ContentType="application/json")
        runtime.invoke_endpoint_async(EndpointName="bench", InputLocation=f"s3://{bucket}/jobs/{job}/input.json",
                                      ContentType="application/json", Accept="image/png", InferenceId=job)

    def poll():
        response = handler.handle(poll_event, context)
        assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "done"

    def poll_floor():
        s3.head_object(Bucket=bucket, Key=key)
        signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=900)

    contenders = (("submit", submit), ("submit_floor", submit_floor), ("poll", poll), ("poll_floor", poll_floor))
    results = {name: [] for name, _ in contenders}
    for _, fn in contenders:
        for _ in range(3):
            fn()
    for _ in range(runs):
        for name, fn in contenders:
            started = time.perf_counter()
            fn()
            results[name].append((time.perf_counter() - started) * 1000)
    med = {name: statistics.median(values) for name, values in results.items()}
    process.kill()
    process.wait()
    print(f"  [async, S3 stand-in {latency_ms:.0f} ms] medians over {runs} rounds: submit {med['submit']:.1f} ms "
          f"(floor {med['submit_floor']:.1f}), poll of a done job {med['poll']:.1f} ms (floor {med['poll_floor']:.1f})")
    ratio = med["submit"] / med["submit_floor"]
    row("async submit (202): ours / minimum (PUT input + InvokeEndpointAsync)", f"{ratio:.2f}x", "<= 1.2x",
        ratio <= 1.2)
    ratio = med["poll"] / med["poll_floor"]
    row("async poll of a done job, 1 image: ours / minimum (HEAD + presign)", f"{ratio:.2f}x", "<= 1.2x",
        ratio <= 1.2)


# ------------------------------------------------------------------------------------------------------ cold start


def cold_start(runs: int) -> None:
    env = {**os.environ, "ENDPOINT_NAME": "e", "BUCKET_NAME": "b", "AWS_REGION": REGION,
           "MODEL_NAME": "stable-diffusion", "MODEL_KIND": "text-to-image", "SIGNER_ROLE_ARN": "arn:aws:iam::123456789012:role/url-signer"}
    bare = "import time; t = time.perf_counter(); import boto3; print(time.perf_counter() - t)"
    # The critical path of a cold start: init until the first model call can go out (the S3 clients are built in
    # the background meanwhile); and, for transparency, until those are ready too.
    ours = ("import sys, time; sys.path.insert(0, 'lambda'); t = time.perf_counter(); import handler; "
            "print(time.perf_counter() - t)")
    ours_all = ("import sys, time; sys.path.insert(0, 'lambda'); t = time.perf_counter(); import handler; "
                "handler.app.store.signing_client; print(time.perf_counter() - t)")

    def measure(code):
        return float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                                    text=True, check=True).stdout) * 1000

    text_model = ("import os, sys, time; os.environ['MODEL_KIND'] = 'text-generation'; sys.path.insert(0, 'lambda'); "
                  "t = time.perf_counter(); import handler; print(time.perf_counter() - t)")
    samples = {"bare": [], "ours": [], "all": [], "text": []}
    for _ in range(runs):
        samples["bare"].append(measure(bare))
        samples["ours"].append(measure(ours))
        samples["all"].append(measure(ours_all))
        samples["text"].append(measure(text_model))
    bare_ms, ours_ms, all_ms, text_ms = (statistics.median(samples[k]) for k in ("bare", "ours", "all", "text"))
    print(f"  (medians over {runs} fresh processes: import boto3 {bare_ms:.0f} ms, image handler ready to call the "
          f"model {ours_ms:.0f} ms, with its S3 clients {all_ms:.0f} ms, text model handler {text_ms:.0f} ms)")
    row("cold start: image handler, init until the first model call / import boto3", f"{ours_ms / bare_ms:.2f}x",
        "<= 1.15x", ours_ms / bare_ms <= 1.15)
    row("cold start: image handler with its S3 clients built (off the critical path) / import boto3",
        f"{all_ms / bare_ms:.2f}x")
    row("cold start: text handler (no S3 client) / import boto3", f"{text_ms / bare_ms:.2f}x")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((ROOT / "lambda").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(ROOT / "lambda"))
    row("Lambda asset size (zipped)", f"{len(buffer.getvalue())} bytes")


# ------------------------------------------------------------------------------------------------------ synth, tests


def synth_and_tests(run_tests: bool) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([str(cli), "synth", "-q", "--no-notices", "-o", "/tmp/bench-cdk.out"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    row("cdk synth wall time (median of 3)", f"{statistics.median(times):.1f} s")
    if run_tests:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                                env=env, capture_output=True, text=True)
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "no output"
        row("test suite wall time", f"{time.perf_counter() - started:.0f} s ({last.strip('= ')})")
    else:
        row("test suite wall time", "skipped (--skip-tests)")


# ------------------------------------------------------------------------------------------------------ local mode


def local_end_to_end(requests_per_level: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from local_rig import LocalProcess, request

    with TemporaryDirectory() as tmp:
        process = LocalProcess(Path(tmp), "--api-key", "k", "-c", "min_size=64")
        try:
            process.wait_until_serving()
            info = {**json.loads((Path(tmp) / "ready.json").read_text()), "api_key": "k"}
            body = {"prompt": "a cyborg tiger", "width": 64, "height": 64, "steps": 1}
            for concurrency in (1, 8):
                latencies = []

                def one(i):
                    started = time.perf_counter()
                    status, _, _ = request(info, body={**body, "seed": i}, key="k")
                    assert status == 200
                    latencies.append((time.perf_counter() - started) * 1000)

                for i in range(5):
                    one(i)
                latencies.clear()
                started = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    list(pool.map(one, range(requests_per_level)))
                elapsed = time.perf_counter() - started
                latencies.sort()
                p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                row(f"local mode, tiny model 64x64 1 step, concurrency {concurrency}",
                    f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, "
                    f"{requests_per_level / elapsed:.1f} req/s")
        finally:
            process.stop()


def local_image_estimate(requests: int = 3) -> None:
    """The banner's "≈ N s per image" against requests of the default size and steps on the same model: the
    estimate is only useful if it is within a third of the truth."""
    import re

    from local_rig import LocalProcess, request

    with TemporaryDirectory() as tmp:
        process = LocalProcess(Path(tmp), "--api-key", "k")
        try:
            banner = process.wait_until_serving()
            estimate = float(re.search(r"≈ ([0-9.]+) s per image", banner).group(1))
            info = {**json.loads((Path(tmp) / "ready.json").read_text()), "api_key": "k"}
            measured = []
            for seed in range(requests):
                started = time.perf_counter()
                status, _, _ = request(info, body={"prompt": "a cyborg tiger", "seed": seed}, key="k")
                assert status == 200
                measured.append(time.perf_counter() - started)
            ratio = estimate / statistics.median(measured)
            row("local mode: banner's image time estimate / measured request (default size and steps)",
                f"{ratio:.2f}x ({estimate:.1f} s vs {statistics.median(measured):.1f} s)", "0.67x-1.5x",
                0.67 <= ratio <= 1.5)
        finally:
            process.stop()


def local_streaming(runs: int = 10, tokens: int = 64) -> None:
    """Time to first token of a streamed answer (TGI stand-in, gateway, streaming handler, event stream, SSE), as a
    ratio to one token's share of the whole answer: how much of a token's time the streaming path adds before the
    first one shows. And the first token's time as a share of the whole answer's."""
    import http.client
    from urllib.parse import urlsplit

    from local_rig import LocalProcess
    from model_api import sse

    with TemporaryDirectory() as tmp:
        process = LocalProcess(Path(tmp), "--api-key", "k", "-c", "models=gpt2-tgi", "-c", "streaming=true")
        try:
            process.wait_until_serving()
            url = urlsplit(json.loads((Path(tmp) / "ready.json").read_text())["api_url"])
            body = json.dumps({"inputs": "Once upon a time", "parameters": {"max_new_tokens": tokens}})

            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)  # kept alive, as clients do

            def one() -> tuple[float, float]:
                started = time.perf_counter()
                connection.request("POST", "/generate_stream", body=body, headers={"x-api-key": "k"})
                response = connection.getresponse()
                decoder, first, count = sse.Decoder(), None, 0
                while chunk := response.read1(65536):
                    found = decoder.feed(chunk)
                    if found and first is None:
                        first = time.perf_counter() - started
                    count += len(found)
                whole = time.perf_counter() - started
                assert count == tokens, count
                return first, whole

            for _ in range(3):
                one()
            measured = [one() for _ in range(runs)]
            ttft = statistics.median(m[0] for m in measured)
            whole = statistics.median(m[1] for m in measured)
            per_token = whole / tokens
            ratio = ttft / per_token
            row(f"local streaming: first token / one token's share of the answer ({tokens} tokens)",
                f"{ratio:.2f}x (first {ttft * 1000:.1f} ms, whole {whole * 1000:.0f} ms)", "<= 1.2x", ratio <= 1.2)
            row("local streaming: first token / whole answer", f"{ttft / whole:.2f}x", "", None)
            # The model's own first token, in-process (the same stand-in and weights, no HTTP, no handler): what
            # the rest of the path adds before the first token shows.
            from local.tgi import TgiModel
            from local.tiny_models import build_tiny_causal_lm

            model = TgiModel(build_tiny_causal_lm(Path(tmp) / "lm"))
            request = json.dumps({"inputs": "Once upon a time", "parameters": {"max_new_tokens": tokens},
                                  "stream": True}).encode()

            def direct() -> float:
                started = time.perf_counter()
                stream = model.invoke_stream(request, "application/json", "application/json")
                next(stream)
                first = time.perf_counter() - started
                stream.close()
                return first

            own = statistics.median(direct() for _ in range(runs + 3))
            row("local streaming: what gateway, handler and event stream add before the first token",
                f"{(ttft - own) * 1000:.1f} ms (model's own first token {own * 1000:.1f} ms)", "", None)
        finally:
            process.stop()


# ------------------------------------------------------------------------------------------------------ GPU


def gpu_serving(steps: int, images: int, device: str = "cuda", size: int = 512) -> None:
    """device="cpu" with a small size and 1 step only checks this code path where no GPU exists."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        row("model serving on GPU", "skipped: no CUDA device on this machine")
        return
    import importlib.util

    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from local.tiny_models import write_clip_tokenizer

    spec = importlib.util.spec_from_file_location("sd_inference", ROOT / "models/stable_diffusion/code/inference.py")
    inference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inference)
    with TemporaryDirectory() as tmp:
        # The full-size SD 2.1 base architecture with random weights (the real weights are not reachable here).
        torch.manual_seed(0)
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                                    use_linear_projection=True)
        vae = AutoencoderKL(block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
                            up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4, sample_size=512)
        write_clip_tokenizer(Path(tmp) / "tok")
        tokenizer = CLIPTokenizer.from_pretrained(Path(tmp) / "tok")
        text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=1024,
                                                    intermediate_size=4096, num_attention_heads=16,
                                                    num_hidden_layers=23, projection_dim=512))
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
        pipe.save_pretrained(Path(tmp) / "sd")
        ours = inference.model_fn(str(Path(tmp) / "sd"))
        plain = StableDiffusionPipeline.from_pretrained(Path(tmp) / "sd", torch_dtype=torch.float32).to(device)
        request = inference.input_fn(json.dumps({"inputs": "a cyborg tiger", "parameters": {
            "num_inference_steps": steps, "seed": 1, "width": size, "height": size}}), "application/json")
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def run_ours():
            inference.predict_fn(request, ours)
            sync()

        def run_plain():
            plain("a cyborg tiger", num_inference_steps=steps, width=size, height=size)
            sync()

        ours_ms, plain_ms = median_ms(run_ours, images, 1), median_ms(run_plain, images, 1)
        row(f"SD {size}x{size} {steps} steps on {device}, plain diffusers fp32", f"{plain_ms / 1000:.2f} s/image")
        row(f"SD {size}x{size} {steps} steps on {device}, our inference code", f"{ours_ms / 1000:.2f} s/image, "
            f"{1000 / ours_ms:.2f} images/s ({plain_ms / ours_ms:.2f}x faster)")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} cores ({cpu}), {memory} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, shared and noisy")


def main(argv=None) -> int:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="rounds of the request-path comparison")
    parser.add_argument("--skip-tests", action="store_true", help="do not time the whole test suite")
    parser.add_argument("--output", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--serving-smoke", action="store_true",
                        help="only run the model-serving part on the CPU, small and 1 step (checks the code path)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    print(f"Machine: {machine()}\n")
    if args.serving_smoke:
        gpu_serving(steps=1, images=1, device="cpu", size=64)
        return 0
    print("Request path (handler in-process, endpoint faked at the botocore level, S3 in its own process):")
    glue(args.runs, "standin", judge=True)
    glue(args.runs // 2, "standin", judge=False, latency_ms=40)
    glue(args.runs // 2, "moto", judge=False)
    async_jobs(args.runs)
    print("Cold start:")
    cold_start(15)
    print("Synth and tests:")
    synth_and_tests(not args.skip_tests)
    print("Local mode end to end:")
    local_end_to_end(60)
    local_image_estimate()
    local_streaming()
    print("Model serving:")
    gpu_serving(steps=30, images=5)
    table = ["| measure | value | target | |", "|---|---|---|---|"] + [f"| {m} | {v} | {t} | {r} |" for m, v, t, r in rows]
    print("\n" + "\n".join(table))
    if args.output:
        args.output.write_text(f"Machine: {machine()}\n\n" + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
