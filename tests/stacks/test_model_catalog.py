"""Synth per preset and for a multi-model deployment: containers, environments, routes, and IAM (each route's
function reaches only its model's endpoint)."""

from __future__ import annotations

import json
import re

import pytest
from cfn_render import one, render, resources, statements

from deployment.container_images import (
    TGI_REPOSITORY,
    TGI_TAG,
    dlc_image_uri,
    hf_inference_image_uri,
)
from deployment.model_catalog import PRESETS, REVISIONS
from deployment.settings import Settings, SettingsError

ALL = "stable-diffusion,gpt2-tgi,gpt2-cpu,minilm-embeddings,chat-embeddings,jumpstart-stable-diffusion"
ALL_SETTINGS = {"models": ALL, "jumpstart-stable-diffusion.source": "endpoint:My-JumpStart-SD"}
US_EAST_1 = {"AWS::Region": "us-east-1", "AWS::URLSuffix": "amazonaws.com"}


def by_path(template, kind, fragment):
    found = {k: v for k, v in resources(template, kind).items()
             if fragment in v.get("Metadata", {}).get("aws:cdk:path", "")}
    assert len(found) == 1, (kind, fragment, sorted(found))
    return next(iter(found.items()))


def model_of(template, pascal_name):
    return by_path(template, "AWS::SageMaker::Model", f"/{pascal_name}/Model")[1]["Properties"]


def function_policy(template, pascal_name):
    role_id, _ = by_path(template, "AWS::IAM::Role", f"/{pascal_name}Function/Role")
    policy, = [p for p in resources(template, "AWS::IAM::Policy").values()
               if {"Ref": role_id} in p["Properties"]["Roles"]]
    return statements(policy["Properties"]["PolicyDocument"], template)


def route_table(template) -> dict:
    """(path, method) -> logical id of the Lambda function the method proxies to."""
    def path(ref):
        if "Fn::GetAtt" in ref:
            return ""
        props = template["Resources"][ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    table = {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["Integration"]["Type"] == "MOCK":  # GET /openapi.json: the gateway answers it (test_openapi.py)
            continue
        if props["HttpMethod"] == "ANY":  # every other method and path: the fallback (test_stack_template.py)
            continue
        uri = json.dumps(props["Integration"]["Uri"])
        function = next(k for k in resources(template, "AWS::Lambda::Function") if k in uri)
        table[(path(props["ResourceId"]), props["HttpMethod"])] = function
    return table


@pytest.fixture(scope="module")
def everything(synth):
    return synth(**ALL_SETTINGS)


def test_gpt2_on_tgi(synth):
    template = synth(models="gpt2-tgi")
    model = model_of(template, "Gpt2Tgi")
    assert render(model["PrimaryContainer"]["Image"], template, US_EAST_1) == \
        dlc_image_uri("us-east-1", TGI_REPOSITORY, TGI_TAG)
    assert model["PrimaryContainer"]["Environment"] == {
        "HF_MODEL_ID": "openai-community/gpt2", "SM_NUM_GPUS": "1", "MAX_INPUT_TOKENS": "768",
        "MAX_TOTAL_TOKENS": "1024", "HF_MODEL_REVISION": REVISIONS["openai-community/gpt2"]}
    assert "ModelDataUrl" not in model["PrimaryContainer"]
    function = by_path(template, "AWS::Lambda::Function", "/Gpt2TgiFunction/Function")[1]["Properties"]
    assert function["Environment"]["Variables"]["MODEL_PROTOCOL"] == "tgi"  # seed and stop allowed: TGI's rules
    assert resources(template, "AWS::S3::Bucket") == {}


def test_tgi_shards_over_every_gpu_of_the_instance(synth):
    template = synth(models="gpt2-tgi", instance_type="ml.g5.12xlarge", max_total_tokens="2048")
    env = model_of(template, "Gpt2Tgi")["PrimaryContainer"]["Environment"]
    assert env["SM_NUM_GPUS"] == "4" and env["MAX_TOTAL_TOKENS"] == "2048"


def test_gpt2_by_hub_id_and_task_on_the_cpu_container(synth):
    template = synth(models="gpt2-cpu")
    container = model_of(template, "Gpt2Cpu")["PrimaryContainer"]
    assert render(container["Image"], template, US_EAST_1) == hf_inference_image_uri("us-east-1", gpu=False)
    assert container["Environment"] == {"HF_MODEL_ID": "openai-community/gpt2", "HF_TASK": "text-generation",
                                        "HF_MODEL_REVISION": REVISIONS["openai-community/gpt2"],
                                        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                                        "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS": "900"}
    variant = one(template, "AWS::SageMaker::EndpointConfig")[1]["Properties"]["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.m5.xlarge"


def test_minilm_embeddings_with_no_code(synth):
    template = synth(models="minilm-embeddings")
    container = model_of(template, "MinilmEmbeddings")["PrimaryContainer"]
    assert container["Environment"]["HF_TASK"] == "feature-extraction"
    assert "ModelDataUrl" not in container
    fn_id, fn = by_path(template, "AWS::Lambda::Function", "/MinilmEmbeddingsFunction/Function")
    assert fn["Properties"]["Environment"]["Variables"]["MODEL_PROTOCOL"] == "pipeline"
    assert set(route_table(template)) == {("/embeddings", "POST"), ("/models/minilm-embeddings", "POST"),
                                          ("/models/minilm-embeddings/endpoint", "GET"), ("/endpoint", "GET"),
                                          # the same action in OpenAI's and TEI's shapes, and OpenAI's model list
                                          ("/v1/embeddings", "POST"), ("/models/minilm-embeddings/v1/embeddings", "POST"),
                                          ("/embed", "POST"), ("/models/minilm-embeddings/embed", "POST"),
                                          ("/v1/models", "GET"), ("/models/minilm-embeddings/v1/models", "GET"),
                                          # one model of the list, by id (the openai SDK's models.retrieve)
                                          ("/v1/models/{model_id}", "GET"),
                                          ("/models/minilm-embeddings/v1/models/{model_id}", "GET")}


def test_chat_embeddings_code_is_packaged_and_serves_both_routes(synth):
    template = synth(models="chat-embeddings")
    container = model_of(template, "ChatEmbeddings")["PrimaryContainer"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["HF_MODEL_ID"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert render(container["ModelDataUrl"], template).endswith(".gz")
    assert set(route_table(template)) == {
        ("/chat", "POST"), ("/embeddings", "POST"), ("/models/chat-embeddings", "POST"),
        ("/models/chat-embeddings/embeddings", "POST"), ("/models/chat-embeddings/endpoint", "GET"),
        ("/endpoint", "GET"),
        # OpenAI's shapes (chat and embeddings), TEI's embed, OpenAI's model list
        ("/v1/chat/completions", "POST"), ("/models/chat-embeddings/v1/chat/completions", "POST"),
        ("/v1/embeddings", "POST"), ("/models/chat-embeddings/v1/embeddings", "POST"),
        ("/embed", "POST"), ("/models/chat-embeddings/embed", "POST"),
        ("/v1/models", "GET"), ("/models/chat-embeddings/v1/models", "GET"),
        ("/v1/models/{model_id}", "GET"), ("/models/chat-embeddings/v1/models/{model_id}", "GET")}


def test_a_pinned_revision_reaches_whatever_downloads_the_weights(synth):
    template = synth(models="gpt2-cpu,minilm-embeddings", **{"gpt2-cpu.revision": "abc123",
                                                             "minilm-embeddings.revision": "def456"})
    for name, revision in (("Gpt2Cpu", "abc123"), ("MinilmEmbeddings", "def456")):
        environment = model_of(template, name)["PrimaryContainer"]["Environment"]
        assert environment["HF_MODEL_REVISION"] == revision and "MODEL_HUB_REVISION" not in environment
    sd = model_of(synth(**{"stable-diffusion.revision": "fed789"}), "StableDiffusion")
    assert sd["PrimaryContainer"]["Environment"]["MODEL_HUB_REVISION"] == "fed789"  # our code downloads


def test_hf_inference_gpu_runs_the_gpu_image(synth):
    template = synth(models="gpt2-cpu", **{"gpt2-cpu.container": "hf-inference-gpu",
                                           "gpt2-cpu.instance_type": "ml.g5.xlarge"})
    image = json.dumps(model_of(template, "Gpt2Cpu")["PrimaryContainer"]["Image"])
    assert "-gpu-" in image and "-cpu-" not in image


def test_existing_jumpstart_endpoint_is_fronted_without_creating_a_model(synth):
    template = synth(models="jumpstart-stable-diffusion",
                     **{"jumpstart-stable-diffusion.source": "endpoint:My-JumpStart-SD"})
    for kind in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"):
        assert resources(template, kind) == {}
    env = by_path(template, "AWS::Lambda::Function", "/JumpstartStableDiffusionFunction/Function")[1][
        "Properties"]["Environment"]["Variables"]
    assert env["ENDPOINT_NAME"] == "My-JumpStart-SD" and env["MODEL_PROTOCOL"] == "jumpstart"
    invoke = [s for s in function_policy(template, "JumpstartStableDiffusion")
              if s["Action"] == ["sagemaker:InvokeEndpoint"]]
    assert invoke[0]["Resource"] == [
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/my-jumpstart-sd"]


def test_trained_artifact_from_s3(synth):
    spec = {"artifact-sd": {"kind": "text-to-image", "source": "s3://my-models/sd/model.tar.gz",
                            "instance_type": "ml.g4dn.xlarge"}}
    template = synth(models="artifact-sd", model_specs=json.dumps(spec))
    container = model_of(template, "ArtifactSd")["PrimaryContainer"]
    assert container["ModelDataUrl"] == "s3://my-models/sd/model.tar.gz"
    assert "HF_MODEL_ID" not in container["Environment"]
    _, role = by_path(template, "AWS::IAM::Role", "/ArtifactSd/ExecutionRole")
    got = statements(role["Properties"]["Policies"][0]["PolicyDocument"], template)
    assert {"Action": ["s3:GetObject"], "Effect": "Allow",
            "Resource": ["arn:${AWS::Partition}:s3:::my-models/sd/model.tar.gz"]} in got


def test_every_route_reaches_only_its_models_function(everything):
    table = route_table(everything)
    functions = {name: by_path(everything, "AWS::Lambda::Function", f"/{name}Function/Function")[0]
                 for name in ("StableDiffusion", "Gpt2Tgi", "Gpt2Cpu", "MinilmEmbeddings", "ChatEmbeddings",
                              "JumpstartStableDiffusion")}
    assert table[("/images", "POST")] == functions["StableDiffusion"]
    assert table[("/generate", "POST")] == functions["Gpt2Tgi"]
    assert table[("/embeddings", "POST")] == functions["MinilmEmbeddings"]  # embeddings kind beats chat
    assert table[("/chat", "POST")] == functions["ChatEmbeddings"]
    assert table[("/endpoint", "GET")] == functions["StableDiffusion"]
    assert table[("/models/gpt2-cpu", "POST")] == functions["Gpt2Cpu"]
    assert table[("/models/jumpstart-stable-diffusion", "GET")] == functions["JumpstartStableDiffusion"]
    assert table[("/v1/images/generations", "POST")] == functions["StableDiffusion"]
    assert table[("/v1/completions", "POST")] == functions["Gpt2Tgi"]
    assert table[("/v1/embeddings", "POST")] == table[("/embed", "POST")] == functions["MinilmEmbeddings"]
    assert table[("/v1/chat/completions", "POST")] == functions["ChatEmbeddings"]
    assert table[("/v1/models", "GET")] == functions["StableDiffusion"]  # the first model, as /endpoint
    assert table[("/v1/models/{model_id}", "GET")] == functions["StableDiffusion"]
    assert table[("/models/chat-embeddings/v1/embeddings", "POST")] == functions["ChatEmbeddings"]
    assert len(table) == 49  # 42, and GET .../v1/models/{model_id} beside each of the 7 model lists


def test_each_function_may_invoke_only_its_own_endpoint(everything):
    prefix = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/"
    expected = {"StableDiffusion": "sagemakermodelapi-stable-diffusion", "Gpt2Tgi": "sagemakermodelapi-gpt2-tgi",
                "Gpt2Cpu": "sagemakermodelapi-gpt2-cpu", "MinilmEmbeddings": "sagemakermodelapi-minilm-embeddings",
                "ChatEmbeddings": "sagemakermodelapi-chat-embeddings",
                "JumpstartStableDiffusion": "my-jumpstart-sd"}
    for name, endpoint in expected.items():
        got = function_policy(everything, name)
        invoke = [s for s in got if "sagemaker:InvokeEndpoint" in s["Action"]]
        assert invoke == [{"Action": ["sagemaker:InvokeEndpoint"], "Effect": "Allow",
                           "Resource": [prefix + endpoint]}], name
        touches_s3 = any(a.startswith("s3:") for s in got for a in s["Action"])
        assert touches_s3 == (name in ("StableDiffusion", "JumpstartStableDiffusion")), name


def test_catalog_tells_every_function_about_every_model(everything):
    env = by_path(everything, "AWS::Lambda::Function", "/Gpt2CpuFunction/Function")[1]["Properties"][
        "Environment"]["Variables"]
    catalog = json.loads(env["MODEL_CATALOG"])
    assert [m["name"] for m in catalog] == ALL.split(",")
    assert catalog[-1] == {"name": "jumpstart-stable-diffusion", "kind": "text-to-image",
                           "endpoint_name": "My-JumpStart-SD", "instance_type": None, "hosting": "realtime"}


def test_multi_model_template_passes_cfn_lint(synth_assembly, everything):
    import subprocess
    import sys
    from pathlib import Path

    path = synth_assembly(**ALL_SETTINGS).stacks[0].template_full_path
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), path], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode in (0, 4), result.stdout


def test_each_model_can_be_tuned_by_name(synth):
    template = synth(models="stable-diffusion,gpt2-cpu", **{"gpt2-cpu.instance_type": "ml.c5.2xlarge",
                                                            "gpt2-cpu.environment": '{"EXTRA": "1"}'})
    variants = [c["Properties"]["ProductionVariants"][0]["InstanceType"]
                for c in resources(template, "AWS::SageMaker::EndpointConfig").values()]
    assert sorted(variants) == ["ml.c5.2xlarge", "ml.g5.xlarge"]
    assert model_of(template, "Gpt2Cpu")["PrimaryContainer"]["Environment"]["EXTRA"] == "1"


@pytest.mark.parametrize("values, problem", [
    ({"models": "gpt2-tgi", "instance_type": "ml.m5.xlarge"},
     "model 'gpt2-tgi': container tgi needs a GPU instance; ml.m5.xlarge has none"),
    ({"models": "stable-diffusion", "container": "hf-inference-gpu", "instance_type": "ml.c5.xlarge"},
     "model 'stable-diffusion': container hf-inference-gpu needs a GPU instance; ml.c5.xlarge has none"),
    ({"models": "jumpstart-stable-diffusion"},
     "model 'jumpstart-stable-diffusion': source 'endpoint:': set the name of the existing endpoint (-c "
     "jumpstart-stable-diffusion.source=endpoint:<endpoint-name>)"),
    ({"models": "stable-diffusion,stable-diffusion"},
     "models lists 'stable-diffusion' twice"),
    ({"models": "dall-e"},
     "unknown model 'dall-e': presets are stable-diffusion, gpt2-tgi, gpt2-cpu, minilm-embeddings, chat-"
     "embeddings, jumpstart-stable-diffusion; define others in model_specs"),
    ({"models": "gpt2-cpu,stable-diffusion", "instance_type": "ml.g5.2xlarge"},  # the example: the first model
     "setting 'instance_type' is ambiguous with 2 models; use <model>.instance_type (e.g. gpt2-cpu.instance_type)"),
    ({"models": "gpt2-cpu", "gpt2-tgi.instance_type": "ml.g5.2xlarge"},
     "setting 'gpt2-tgi.instance_type' names a model that models does not select (gpt2-cpu)"),
    ({"models": "", "gpt2-tgi.instance_type": "ml.g5.2xlarge"},
     "setting 'gpt2-tgi.instance_type' names a model that models does not select (none)"),
    ({"models": "x", "model_specs": '{"x": {"kind": "text-to-image", "source": "endpoint:e", '
                                    '"code": "models/stable_diffusion/code"}}'},
     "model 'x': code cannot be deployed to an existing endpoint"),
    ({"models": "x", "model_specs": '{"x": {"kind": "text-to-image", "source": "hub:a/b", "task": "t", '
                                    '"seconds_per_step": 0}}'},
     "model 'x': seconds_per_step must be above 0 and at most 60 (got 0.0)"),
    ({"models": "x", "model_specs": '{"x": {"kind": "text-to-image", "source": "hub:a/b", "task": "t", '
                                    '"seconds_per_step": 61}}'},
     "model 'x': seconds_per_step must be above 0 and at most 60 (got 61.0)"),
    ({"models": "gpt2-tgi", "max_input_tokens": "2048"},
     "model 'gpt2-tgi': max_input_tokens must be below max_total_tokens"),
    ({"models": "gpt2-cpu", "max_input_tokens": "2048"},
     "model 'gpt2-cpu': max_input_tokens and max_total_tokens apply to the tgi container only"),
    ({"models": "gpt2-cpu", "task": "none"},
     "model 'gpt2-cpu': a Hub model without code needs a task (HF_TASK), e.g. text-generation"),
    ({"models": "x", "model_specs": '{"x": {"kind": "text-to-image", "source": "s3://b/m.tar.gz", '
                                    '"code": "models/stable_diffusion/code"}}'},
     "model 'x': code cannot be added to an s3 artifact at synth time; put code/inference.py inside the "
     "model.tar.gz"),
    ({"models": "x", "model_specs": '{"x": {"kind": "poetry", "source": "hub:a/b", "task": "t"}}'},
     "model 'x': kind 'poetry' is not one of text-to-image, text-generation, embeddings, chat"),
    ({"models": "x", "model_specs": '{"x": {"kind": "chat"}}'},
     "model_specs['x'] must be an object with at least kind and source"),
    ({"models": "stable-diffusion", "protocol": "tgi"},
     "model 'stable-diffusion': protocol 'tgi' does not fit kind text-to-image (one of toolkit, jumpstart)"),
    ({"models": "gpt2-cpu", "download_by": "code"},
     "model 'gpt2-cpu': download_by=code needs code whose model_fn downloads the weights"),
    ({"models": "stable-diffusion", "code": "models/nowhere"},
     "model 'stable-diffusion': code folder 'models/nowhere' has no inference.py"),
])
def test_catalog_problems_fail_synth(values, problem):
    with pytest.raises(SettingsError) as caught:
        Settings.from_values(values)
    assert problem in caught.value.problems  # the whole problem, as cdk synth prints it


def test_every_preset_is_valid_on_its_own():
    for name, preset in PRESETS.items():
        problems = preset.problems()
        if preset.existing_endpoint is not None:
            assert problems and "set the name of the existing endpoint" in problems[0]
        else:
            assert problems == [], name


def test_a_catalog_too_big_for_the_lambda_environment_is_refused():
    specs = {f"model-number-{i:02d}": {"kind": "embeddings", "source": "hub:org/some-embedding-model",
                                       "task": "feature-extraction", "instance_type": "ml.m5.large"}
             for i in range(25)}
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"models": ",".join(specs), "model_specs": json.dumps(specs)})
    assert "Lambda's 4 KB environment limit" in str(caught.value)
    # A generous but real deployment fits.
    Settings.from_values({"models": ",".join(list(specs)[:10]), "model_specs": json.dumps(specs)})


def test_the_catalog_limit_counts_each_models_name_kind_and_endpoint_name():
    """2,500 bytes for the catalog (the rest of the 4 KB is the function's other variables): each model counts its
    name, kind and endpoint name plus 80 for the JSON around them. Names of 20 characters, kind embeddings (10),
    endpoint sagemakermodelapi-<name> (38): 148 bytes a model, so 16 fit (2,368) and 17 do not (2,516)."""
    specs = {f"embedder{i:02d}-abcdefghi": {"kind": "embeddings", "source": "hub:org/some-embedding-model",
                                            "task": "feature-extraction", "instance_type": "ml.m5.large"}
             for i in range(17)}
    assert {len(name) for name in specs} == {20}
    Settings.from_values({"models": ",".join(list(specs)[:16]), "model_specs": json.dumps(specs)})
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"models": ",".join(specs), "model_specs": json.dumps(specs)})
    assert str(caught.value).splitlines()[1:] == [
        "  - 17 models do not fit in one deployment (the catalog every Lambda carries would pass Lambda's 4 KB "
        "environment limit); split them over two stacks (stack_name)"]


@pytest.mark.parametrize("instance_type, count", [("ml.t2.medium", 2), ("ml.m5.large", 2), ("ml.m5.xlarge", 4),
                                                  ("ml.m5.2xlarge", 8), ("ml.g5.12xlarge", 48), ("nonsense", 0)])
def test_vcpus_by_size(instance_type, count):
    from deployment.model_catalog import vcpus

    assert vcpus(instance_type) == count


def test_a_new_kind_is_deployed_from_its_module_alone(monkeypatch, synth):
    """The example kind (tests/example_kind.py), registered: the settings accept it with its own protocols and
    scaling target, and the stack routes its action to its function, with no edit anywhere else."""
    import example_kind
    from model_api.kinds import KINDS

    from deployment.hosting import hosting_of

    monkeypatch.setitem(KINDS, "text-classification", example_kind.KIND)
    spec = json.dumps({"sentiment": {"kind": "text-classification", "source": "hub:org/sentiment",
                                     "task": "text-classification", "instance_type": "ml.m5.large"}})
    model = Settings.from_values({"models": "sentiment", "model_specs": spec}).catalog[0]
    assert (model.api_protocol, hosting_of(model).target_invocations) == ("pipeline", 120.0)
    with pytest.raises(SettingsError, match=r"protocol 'tgi' does not fit kind text-classification \(one of "
                                            r"pipeline\)"):
        Settings.from_values({"models": "sentiment", "model_specs": spec, "sentiment.protocol": "tgi"})
    template = synth(models="sentiment", model_specs=spec)
    table = route_table(template)
    function = table[("/classify", "POST")]
    assert table[("/models/sentiment", "POST")] == function and ("/images", "POST") not in table
    variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert (variables["MODEL_KIND"], variables["MODEL_PROTOCOL"]) == ("text-classification", "pipeline")
    assert not resources(template, "AWS::S3::Bucket")  # a kind that stores no images gets no bucket


@pytest.mark.parametrize("name", ["Mine", "my_model", "1model", "m" * 41, "-mine"])
def test_a_model_name_that_cannot_name_its_resources_is_refused(name):
    specs = {name: {"kind": "text-generation", "source": "s3://my-models/llm/model.tar.gz", "container": "tgi"}}
    with pytest.raises(SettingsError) as caught:
        Settings.from_values({"models": name, "model_specs": json.dumps(specs)})
    assert str(caught.value).splitlines()[1:] == [
        f"  - model {name!r}: name must be lowercase letters, digits and hyphens, starting with a letter, at most 40"]
    assert Settings.from_values({"models": "m" * 40, "model_specs": json.dumps({"m" * 40: specs[name]})})


def test_every_hub_preset_is_pinned_to_a_commit():
    hub = [spec for spec in PRESETS.values() if spec.hub_id]
    assert len(hub) == 5 and all(re.fullmatch(r"[0-9a-f]{40}", spec.revision or "") for spec in hub)
    assert all(spec.revision == REVISIONS[spec.hub_id] for spec in hub)


def test_pickle_weights_are_allowed_only_when_the_model_says_so(synth, template):
    env = model_of(template, "StableDiffusion")["PrimaryContainer"]["Environment"]
    assert "ALLOW_PICKLE_WEIGHTS" not in env  # the code loads safetensors only
    allowed = synth(**{"allow_pickle_weights": "true"})
    assert model_of(allowed, "StableDiffusion")["PrimaryContainer"]["Environment"]["ALLOW_PICKLE_WEIGHTS"] == "true"
