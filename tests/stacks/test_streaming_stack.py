"""A model deployed with streaming=true: its routes are STREAM integrations invoking its function with
InvokeWithResponseStream for stream_timeout_seconds, its function runs the streaming runtime, its image bound follows
SageMaker's own limit; the settings that cannot stream are refused at synth; the constructs refuse it alone."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from cfn_render import resources
from test_stack_template import logical_id

from deployment.lambda_source import not_executable
from deployment.settings import Settings, SettingsError
from stacks.rest_api import ModelRestApi

STREAMING = {"models": "gpt2-tgi,stable-diffusion", "gpt2-tgi.streaming": "true",
             "stable-diffusion.streaming": "true", "stream_timeout_seconds": "120"}


@pytest.fixture(scope="module")
def streaming(synth):
    return synth(models="gpt2-tgi,minilm-embeddings", **{"gpt2-tgi.streaming": "true"})


def methods_by_function(template: dict) -> dict[str, list[dict]]:
    """function construct path fragment -> integrations of the methods that invoke it."""
    out: dict[str, list[dict]] = {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        integration = method["Properties"].get("Integration") or {}
        uri = json.dumps(integration.get("Uri"))
        for name in ("Gpt2TgiFunction", "MinilmEmbeddingsFunction"):
            if name in uri:
                out.setdefault(name, []).append(integration)
    return out


def test_a_streaming_models_routes_stream_and_the_others_stay_buffered(streaming):
    by_function = methods_by_function(streaming)
    assert len(by_function["Gpt2TgiFunction"]) >= 6  # /generate, /generate_stream, /v1/completions, ...
    for integration in by_function["Gpt2TgiFunction"]:
        assert integration["ResponseTransferMode"] == "STREAM" and integration["TimeoutInMillis"] == 300_000
        # InvokeWithResponseStream: Lambda's 2021-11-15 API (API Gateway Developer Guide, response streaming).
        assert "/response-streaming-invocations" in json.dumps(integration["Uri"])
    for integration in by_function["MinilmEmbeddingsFunction"]:
        assert "ResponseTransferMode" not in integration and integration["TimeoutInMillis"] == 29_000
        assert "/invocations" in json.dumps(integration["Uri"]) and "response-streaming" not in \
            json.dumps(integration["Uri"])


def test_a_streaming_function_runs_the_streaming_runtime_for_the_stream_time(streaming):
    function = streaming["Resources"][logical_id(streaming, "AWS::Lambda::Function", "Gpt2TgiFunction/Function")]
    props = function["Properties"]
    env = props["Environment"]["Variables"]
    assert props["Handler"] == "stream_handler.handler" and props["Runtime"] == "python3.14"
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/var/task/stream_bootstrap"
    assert (props["Timeout"], env["STREAM_SECONDS"], env["MODEL_STREAMING"]) == (305, "300", "true")
    # One read may wait as long as SageMaker lets a model take, not what is left of 29 s.
    assert env["INVOKE_READ_TIMEOUT_SECONDS"] == "62"
    catalog = {m["name"]: m for m in json.loads(env["MODEL_CATALOG"])}
    assert catalog["gpt2-tgi"]["streaming"] is True and "streaming" not in catalog["minilm-embeddings"]
    other = streaming["Resources"][logical_id(streaming, "AWS::Lambda::Function",
                                              "MinilmEmbeddingsFunction/Function")]["Properties"]
    assert other["Handler"] == "handler.handler" and other["Timeout"] == 28
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in other["Environment"]["Variables"]


def test_a_streaming_image_model_may_take_what_sagemaker_allows():
    settings = Settings.from_values(STREAMING)
    sd = settings.model("stable-diffusion")
    env = settings.function_environment(sd)
    # SageMaker's 60 s invocation limit, 2 s to spare; the model's own deadline a second after.
    assert env["IMAGE_TIME_BUDGET_SECONDS"] == "58" and settings.model_request_seconds(sd) == 58
    assert settings.function_timeout_seconds(sd) == 125
    short = Settings.from_values({**STREAMING, "stream_timeout_seconds": "30"})
    assert short.model_request_seconds(short.model("stable-diffusion")) == 24  # within the stream's 30 s


@pytest.mark.parametrize("values, problem", [
    ({"models": "minilm-embeddings", "streaming": "true"}, "streaming: embeddings models answer at once"),
    ({"models": "gpt2-cpu", "streaming": "true", "hosting": "async"}, "streaming and hosting=async"),
    ({"models": "gpt2-cpu", "streaming": "true", "snapstart": "true"}, "snapstart and streaming (gpt2-cpu)"),
    ({"stream_timeout_seconds": "900"}, "stream_timeout_seconds must be from 30 to 895"),
    ({"stream_timeout_seconds": "29"}, "stream_timeout_seconds must be from 30 to 895"),
])
def test_what_cannot_stream_is_refused_at_synth(values, problem):
    with pytest.raises(SettingsError) as caught:
        Settings.from_values(values)
    assert problem in str(caught.value)


def test_the_rest_api_construct_bounds_a_stream():
    stack = cdk.Stack(cdk.App(), "S")
    api = ModelRestApi(stack, "Api")
    from aws_cdk import aws_lambda as lambda_

    function = lambda_.Function(stack, "F", runtime=lambda_.Runtime.PYTHON_3_13, handler="x.y",
                                code=lambda_.Code.from_inline("def y(e, c): pass"))
    with pytest.raises(ValueError, match="stream_seconds must be from 30 to 900"):
        api.add_route("/x", "POST", function, stream_seconds=901)


def test_the_streaming_wrapper_is_executable_in_the_synthesized_asset(synth_assembly, streaming):
    """Lambda runs AWS_LAMBDA_EXEC_WRAPPER as a program: the asset folder the CLI zips (keeping each file's mode)
    holds it executable."""
    assembly = synth_assembly(models="gpt2-tgi,minilm-embeddings", **{"gpt2-tgi.streaming": "true"})
    folders = {p for p in Path(assembly.directory).glob("asset.*") if (p / "stream_handler.py").is_file()}
    assert folders
    for folder in folders:
        assert not_executable(folder / "stream_bootstrap") is None, folder


def test_a_wrapper_that_lost_its_executable_bit_is_refused_at_synth(tmp_path, monkeypatch):
    from stacks import model_function

    wrapper = tmp_path / "stream_bootstrap"
    wrapper.write_text("#!/bin/bash\n")
    wrapper.chmod(0o644)  # as a Windows checkout, or core.fileMode=false, leaves it
    assert not_executable(wrapper) == (
        f"{wrapper} is not executable, and Lambda runs it as a program (the streaming runtime's "
        "AWS_LAMBDA_EXEC_WRAPPER): run `chmod +x` on it (or `git update-index --chmod=+x` and check out again); a "
        "Windows checkout cannot keep the bit, so deploy a streaming model from Linux, macOS or WSL")
    assert not_executable(tmp_path / "absent") == f"absent is missing from {tmp_path}"
    from deployment.lambda_source import STREAM_WRAPPER
    assert not_executable(STREAM_WRAPPER) is None
    assert not_executable_copy(STREAM_WRAPPER, tmp_path).startswith("lambda/stream_bootstrap is not executable")
    monkeypatch.setattr(model_function, "STREAM_WRAPPER", wrapper)
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="stream_bootstrap is not executable"):
        model_function.ModelFunction(stack, "F", model_name="m", environment={}, streaming=True)
    model_function.ModelFunction(stack, "Buffered", model_name="m", environment={})  # only streaming needs it
    wrapper.chmod(0o755)
    model_function.ModelFunction(stack, "G", model_name="m", environment={}, streaming=True)


def not_executable_copy(wrapper, tmp_path):
    """The message for the repository's own wrapper had it lost its bit: named relative to the repository."""
    import os
    import stat

    mode = wrapper.stat().st_mode
    try:
        os.chmod(wrapper, mode & ~0o111)
        return not_executable(wrapper)
    finally:
        os.chmod(wrapper, stat.S_IMODE(mode))


def test_a_streaming_function_may_invoke_its_endpoint_with_the_one_action_streaming_needs(streaming):
    """InvokeEndpointWithResponseStream is authorized as sagemaker:InvokeEndpoint (SageMaker API Reference,
    InvokeEndpointWithResponseStream: "your IAM permissions must allow the sagemaker:InvokeEndpoint action"): the
    streaming function's role has exactly that, on its own endpoint, and API Gateway may invoke the function."""
    function_id = logical_id(streaming, "AWS::Lambda::Function", "Gpt2TgiFunction/Function")
    role = streaming["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [s for policy in resources(streaming, "AWS::IAM::Policy").values()
                  if {"Ref": role} in policy["Properties"]["Roles"]
                  for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in
                                              ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
    assert [s["Action"] for s in sagemaker] == ["sagemaker:InvokeEndpoint"]
    endpoint = json.dumps(sagemaker[0]["Resource"])
    assert endpoint.endswith(':endpoint/sagemakermodelapi-gpt2-tgi"]]}')
    permissions = [p["Properties"] for p in resources(streaming, "AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}]
    assert permissions and {p["Action"] for p in permissions} == {"lambda:InvokeFunction"}
    assert {p["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
