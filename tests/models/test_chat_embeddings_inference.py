"""models/chat_embeddings/code/inference.py with a tiny random-weight causal LM, directly and through the toolkit;
and the no-code embeddings path (HF_TASK=feature-extraction) with the real MiniLM model."""

from __future__ import annotations

import json
import math

import pytest
from model_api.kinds.embeddings import pooled_vectors

from local.tiny_models import minilm_model_dir
from local.toolkit import ModelError, ToolkitModel


@pytest.fixture(scope="module")
def bundle(chat_inference, tiny_lm_dir):
    return chat_inference.model_fn(str(tiny_lm_dir))


def run(inference, bundle, request: dict):
    data = inference.input_fn(json.dumps(request), "application/json")
    return json.loads(inference.output_fn(inference.predict_fn(data, bundle), "application/json"))


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b))


def test_embeddings_are_unit_length_and_batched(chat_inference, bundle):
    texts = ["a", "a much longer sentence that needs padding in a batch", "third"]
    vectors = run(chat_inference, bundle, {"task": "embeddings", "inputs": texts})["embeddings"]
    assert len(vectors) == 3 and len({len(v) for v in vectors}) == 1
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5 for v in vectors)


def test_padding_does_not_change_an_embedding(chat_inference, bundle):
    alone, = run(chat_inference, bundle, {"task": "embeddings", "inputs": "short"})["embeddings"]
    batched = run(chat_inference, bundle, {"task": "embeddings",
                                           "inputs": ["short", "a far longer text that forces padding"]})
    assert cosine(alone, batched["embeddings"][0]) > 0.9999


def test_chat_replies_with_text_and_greedy_decoding_is_deterministic(chat_inference, bundle):
    request = {"task": "chat", "messages": [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Hello"}],
               "parameters": {"max_new_tokens": 8}}
    first = run(chat_inference, bundle, request)["reply"]
    assert isinstance(first, str)
    assert run(chat_inference, bundle, request)["reply"] == first


def test_seeded_sampling_reproduces(chat_inference, bundle):
    request = {"task": "chat", "messages": [{"role": "user", "content": "Hi"}],
               "parameters": {"max_new_tokens": 8, "temperature": 1.5, "top_k": 50, "seed": 11}}
    assert run(chat_inference, bundle, request) == run(chat_inference, bundle, request)


def test_chat_prompt_uses_the_template_or_a_plain_transcript(chat_inference, bundle):
    messages = [{"role": "user", "content": "Hi"}]
    assert chat_inference.chat_prompt(bundle["tokenizer"], messages) == "<|user|>Hi<|end|><|assistant|>"

    class NoTemplate:
        chat_template = None

    assert chat_inference.chat_prompt(NoTemplate(), messages) == "User: Hi\nAssistant:"


@pytest.mark.parametrize("request_body, message", [
    ({"task": "translate"}, "task must be"),
    ({"task": "embeddings", "inputs": []}, "inputs must be"),
    ({"task": "embeddings", "inputs": [""]}, "inputs must be"),
    ({"task": "chat", "messages": []}, "messages must be"),
    ({"task": "chat", "messages": [{"role": "robot", "content": "x"}]}, "messages must be"),
    ({"task": "chat", "messages": [{"role": ["user"], "content": "x"}]}, "messages must be"),
    ({"task": "chat", "messages": [{"role": {}, "content": "x"}]}, "messages must be"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"beam": 2}}, "parameters must"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"max_new_tokens": 0}},
     "max_new_tokens must be"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"max_new_tokens": 2.5}},
     "max_new_tokens must be an integer from 1 to"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"temperature": 5e-324}},
     r"temperature must be a number from 0.01 to 100"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"repetition_penalty": True}},
     r"repetition_penalty must be a number from 0.01 to 100"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"top_p": 1}},
     "top_p must be a number greater than 0 and less than 1"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"top_k": 0}},
     "top_k must be an integer from 1 to 100000"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"seed": -1}},
     "seed must be an integer from 0 to 4294967295"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"do_sample": 1}},
     "do_sample must be true or false"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"stop": ["a"] * 5}},
     "stop must be a list of at most 4 non-empty strings"),
    ({"task": "chat", "messages": [{"role": "user", "content": "x"}], "parameters": {"stop": [""]}},
     "stop must be a list"),
])
def test_bad_requests_raise(chat_inference, request_body, message):
    with pytest.raises(ValueError, match=message):
        chat_inference.input_fn(json.dumps(request_body), "application/json")


def test_numbers_reach_the_model_in_their_types(chat_inference):
    """A temperature of 2 is 2.0 (transformers refuses an int temperature), a max_new_tokens of 3.0 is 3: any
    caller of the endpoint, not only the API, is served."""
    data = chat_inference.input_fn(json.dumps({"messages": [{"role": "user", "content": "x"}], "parameters": {
        "temperature": 2, "repetition_penalty": 1, "top_p": 0.5, "max_new_tokens": 3.0, "top_k": 5.0, "seed": 7.0,
        "do_sample": True, "stop": ["."]}}), "application/json")
    parameters = data["parameters"]
    assert parameters == {"temperature": 2.0, "repetition_penalty": 1.0, "top_p": 0.5, "max_new_tokens": 3,
                          "top_k": 5, "seed": 7, "do_sample": True, "stop": ["."]}
    assert [type(parameters[name]) for name in ("temperature", "repetition_penalty", "max_new_tokens", "top_k",
                                                 "seed")] == [float, float, int, int, int]


def test_the_inference_code_bounds_are_the_apis(chat_inference):
    from model_api import text
    from model_api.kinds.chat import chat_request_schema
    from model_api.schema import TextLimits

    schema = chat_request_schema(TextLimits())["properties"]["parameters"]["properties"]
    assert set(schema) == chat_inference.GENERATION
    for name, (low, high) in chat_inference.NUMBERS.items():
        assert (schema[name]["minimum"], schema[name]["maximum"]) == (low, high) == (
            text.MIN_TEMPERATURE if name == "temperature" else text.MIN_REPETITION_PENALTY, text.MAX_SAMPLING_DIVISOR)
    for name, bounds in chat_inference.INTEGERS.items():
        if bounds is not None:
            assert (schema[name]["minimum"], schema[name]["maximum"]) == bounds
    assert schema["stop"]["maxItems"] == chat_inference.MAX_STOPS


def test_a_stop_text_ends_the_reply_before_it(chat_inference, bundle):
    request = {"messages": [{"role": "user", "content": "Hello"}], "parameters": {"max_new_tokens": 8}}
    whole = run(chat_inference, bundle, request)["reply"]
    assert len(whole) >= 2
    stop = whole[1]
    cut = run(chat_inference, bundle, {**request, "parameters": {"max_new_tokens": 8, "stop": [stop, "\u2603"]}})
    assert cut["reply"] == whole[:whole.index(stop)].strip()


@pytest.fixture(scope="module")
def served_chat(chat_artifact_dir):
    return ToolkitModel(chat_artifact_dir)


def test_toolkit_serves_chat_and_embeddings(served_chat):
    body, content_type = served_chat.invoke(json.dumps({
        "task": "chat", "messages": [{"role": "user", "content": "Hi"}], "parameters": {"max_new_tokens": 4}}
    ).encode(), "application/json", "application/json")
    assert content_type == "application/json" and isinstance(json.loads(body)["reply"], str)
    body, _ = served_chat.invoke(b'{"task": "embeddings", "inputs": ["a", "b"]}', "application/json",
                                 "application/json")
    assert len(pooled_vectors(json.loads(body)["embeddings"], 2)) == 2


def test_toolkit_turns_bad_chat_input_into_400(served_chat):
    with pytest.raises(ModelError) as caught:
        served_chat.invoke(b'{"task": "chat", "messages": []}', "application/json", "application/json")
    assert caught.value.status == 400


# ------------------------------------------------------------------------------------------------------ MiniLM


@pytest.fixture(scope="module")
def minilm():
    """The no-code path: the toolkit's own feature-extraction pipeline (HF_MODEL_ID + HF_TASK on SageMaker)."""
    return ToolkitModel(minilm_model_dir(), task="feature-extraction")


def test_minilm_related_sentences_are_closer_than_unrelated(minilm):
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell sharply."]
    body, _ = minilm.invoke(json.dumps({"inputs": texts}).encode(), "application/json", "application/json")
    vectors = pooled_vectors(json.loads(body), 3)
    assert len(vectors[0]) == 384
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2


def test_minilm_pooling_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    text = "Mean pooling, then L2 normalisation."
    body, _ = minilm.invoke(json.dumps({"inputs": [text]}).encode(), "application/json", "application/json")
    ours, = pooled_vectors(json.loads(body), 1)
    reference = SentenceTransformer(str(minilm_model_dir()), device="cpu").encode([text], normalize_embeddings=True)[0]
    assert cosine(ours, reference.tolist()) > 0.9999


def test_max_new_tokens_takes_its_bounds_and_the_default_fits_a_low_limit(chat_inference, monkeypatch):
    chat = {"task": "chat", "messages": [{"role": "user", "content": "x"}]}
    for tokens in (1, chat_inference.MAX_NEW_TOKENS):
        assert chat_inference.input_fn(json.dumps({**chat, "parameters": {"max_new_tokens": tokens}}),
                                       "application/json")["parameters"] == {"max_new_tokens": tokens}
    with pytest.raises(ValueError, match="max_new_tokens must be"):
        chat_inference.input_fn(json.dumps({**chat, "parameters": {"max_new_tokens": chat_inference.MAX_NEW_TOKENS
                                                                   + 1}}), "application/json")
    # A deployment whose CHAT_MAX_NEW_TOKENS is below the default still takes requests that leave it out.
    monkeypatch.setenv("CHAT_MAX_NEW_TOKENS", "16")
    import importlib.util

    spec = importlib.util.spec_from_file_location(chat_inference.__name__, chat_inference.__file__)
    low = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(low)
    assert low.input_fn(json.dumps(chat), "application/json")["task"] == "chat"


class Config:
    def __init__(self, **values):
        self.__dict__.update(values)


class ModelWithConfig:
    def __init__(self, **values):
        self.config = Config(**values)


@pytest.mark.parametrize("config, expected", [
    ({"max_position_embeddings": 512}, 512),
    ({"max_position_embeddings": None, "n_positions": 64}, 64),  # GPT-2 style configs
    ({"n_positions": 1024}, 1024),
    ({"max_position_embeddings": 1_000_000}, 4096),  # capped by CHAT_MAX_INPUT_TOKENS
    ({}, 4096),
])
def test_positions_come_from_the_config_capped(chat_inference, config, expected):
    assert chat_inference.MAX_INPUT_TOKENS == 4096
    assert chat_inference.positions(ModelWithConfig(**config)) == expected


@pytest.mark.parametrize("parameters, sampling", [
    ({}, False), ({"temperature": 0.7}, True), ({"top_p": 0.9}, True), ({"top_k": 5}, True),
    ({"temperature": 0.7, "do_sample": False}, False), ({"seed": 3}, False),
])
def test_sampling_parameters_imply_sampling(chat_inference, bundle, parameters, sampling):
    model, seen = bundle["model"], {}

    class Spy:
        config, device = model.config, model.device

        def generate(self, **options):
            seen.update(options)
            return model.generate(**options)

    chat_inference.reply(Spy(), bundle["tokenizer"], [{"role": "user", "content": "Hi"}],
                         {"max_new_tokens": 2, **parameters})
    assert seen["do_sample"] is sampling and seen["max_new_tokens"] == 2 and "seed" not in seen
    assert seen["pad_token_id"] == bundle["tokenizer"].pad_token_id is not None


def test_on_a_cpu_the_model_runs_in_full_precision(bundle, chat_inference):
    assert bundle["model"].dtype == chat_inference.torch.float32
    assert bundle["model"].device.type == "cpu"


def test_on_a_gpu_the_model_loads_in_half_precision_onto_cuda(chat_inference, tiny_lm_dir, monkeypatch):
    loaded = {}

    class FakeModel:
        def to(self, device):
            loaded["device"] = device
            return self

        def eval(self):
            return self

    class FakeAuto:
        @staticmethod
        def from_pretrained(folder, **options):
            loaded.update(folder=folder, **options)
            return FakeModel()

    monkeypatch.setattr(chat_inference.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(chat_inference, "AutoModelForCausalLM", FakeAuto)
    chat_inference.model_fn(str(tiny_lm_dir))
    # Safetensors only (pickle .bin weights run code when loaded), unless the deployer allows pickle weights.
    assert loaded == {"folder": str(tiny_lm_dir), "torch_dtype": chat_inference.torch.float16, "device": "cuda",
                      "use_safetensors": True}
    monkeypatch.setenv("ALLOW_PICKLE_WEIGHTS", "true")
    chat_inference.model_fn(str(tiny_lm_dir))
    assert loaded["use_safetensors"] is False


def test_a_text_longer_than_the_model_reads_is_truncated_to_its_positions(chat_inference, bundle):
    limit = chat_inference.positions(bundle["model"])
    long_text = "word " * (limit * 3)
    (vector,) = run(chat_inference, bundle, {"task": "embeddings", "inputs": [long_text]})["embeddings"]
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-5)


def test_any_accept_gets_json_and_another_type_is_refused_by_name(chat_inference):
    assert chat_inference.output_fn({"reply": "hi"}, "*/*") == '{"reply": "hi"}'
    with pytest.raises(ValueError, match=r"^accept type 'text/csv' is not supported; use application/json$"):
        chat_inference.output_fn({"reply": "hi"}, "text/csv")


def test_a_conversation_too_long_for_the_model_is_refused_with_its_sizes(chat_inference, bundle):
    limit = chat_inference.positions(bundle["model"])
    messages = [{"role": "user", "content": "word " * limit}]
    with pytest.raises(ValueError) as caught:
        chat_inference.reply(bundle["model"], bundle["tokenizer"], messages, {"max_new_tokens": 5})
    message = str(caught.value)
    assert "max_new_tokens 5: together over the" in message and f"over the {limit} the model takes" in message


def test_a_request_without_task_is_a_chat(chat_inference):
    data = chat_inference.input_fn(json.dumps({"messages": [{"role": "user", "content": "Hi"}]}), "application/json")
    assert data["task"] == "chat"
