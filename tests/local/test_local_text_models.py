"""Local mode with text models: TGI-style generation and chat on a tiny random-weight LM, embeddings with the real
MiniLM model, all through the same handler, schemas and inference code as deployed."""

from __future__ import annotations

import json
import math

import pytest
from local_rig import TEXT_MODELS as MODELS
from local_rig import request


@pytest.fixture
def local(local_text):
    return local_text


def post(local, path, body, content_type="application/json"):
    return request(local, "POST", body=body, key="k", path=path, content_type=content_type)


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b))


def test_banner_names_what_each_model_runs_on(local):
    assert "gpt2-tgi (text-generation): a tiny RANDOM-WEIGHT language model" in local["banner"]
    assert "minilm-embeddings (embeddings): the real all-MiniLM-L6-v2" in local["banner"]
    assert "hosted serverless (2048 MB, up to 5 at once) on AWS" in local["banner"]
    assert "hosted on 1-3 x ml.m5.xlarge (autoscaled) on AWS" in local["banner"]


def test_generate_answers_from_local_weights(local):
    status, _, body = post(local, "/generate", {"inputs": "Once upon a time", "parameters": {
        "max_new_tokens": 5, "do_sample": True, "seed": 3, "top_k": 20, "stop": ["\n"]}})
    assert status == 200, body
    assert isinstance(body["generated_text"], str)
    again = post(local, "/generate", {"inputs": "Once upon a time", "parameters": {
        "max_new_tokens": 5, "do_sample": True, "seed": 3, "top_k": 20, "stop": ["\n"]}})[2]
    assert again["generated_text"] == body["generated_text"]  # TGI's seed reproduces


def test_generate_parameters_follow_tgi_rules(local):
    status, _, body = post(local, "/generate", {"inputs": "a", "parameters": {"top_p": 1.0}})
    assert (status, body["error"]["message"]) == (400, "parameters.top_p must be less than 1 (got 1.0)")
    status, _, body = post(local, "/generate", b'{"inputs": "a", "parameters": {"top_p": 1.0}}',
                           content_type="text/plain")
    assert status == 400 and body["error"]["message"] == "parameters.top_p must be less than 1 (got 1.0)"
    status, _, body = post(local, "/generate", b"", content_type="text/plain")
    assert status == 400 and "body is empty" in body["error"]["message"]
    status, _, body = post(local, "/generate", b"{}", content_type="text/plain")
    assert status == 400 and body["error"]["message"] == "inputs is required"


def test_the_cpu_pipeline_model_generates_too(local):
    status, _, body = post(local, "/models/gpt2-cpu", {"inputs": "Hello", "parameters": {"max_new_tokens": 4}})
    assert status == 200, body
    assert isinstance(body["generated_text"], str)


def test_minilm_embeddings_put_related_sentences_closer(local):
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell sharply."]
    status, _, body = post(local, "/embeddings", {"inputs": texts})
    assert status == 200, body
    vectors = body["embeddings"]
    assert body["dimensions"] == 384 and len(vectors) == 3
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-6 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2


def test_chat_and_its_embeddings(local):
    status, _, body = post(local, "/chat", {"messages": [{"role": "user", "content": "Hello!"}],
                                            "parameters": {"max_new_tokens": 5}})
    assert status == 200 and isinstance(body["reply"], str), body
    status, _, body = post(local, "/models/chat-embeddings/embeddings", {"inputs": ["a", "b c d"]})
    assert status == 200 and body["dimensions"] == 32 and len(body["embeddings"]) == 2


def test_endpoint_lists_every_model(local):
    status, _, body = request(local, "GET", key="k", path="/endpoint")
    assert status == 200
    assert [e["name"] for e in body["endpoints"]] == MODELS.split(",")
    assert body["endpoints"][0]["runtime_url"] == (
        "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/sagemakermodelapi-gpt2-tgi/invocations")
    status, _, own = request(local, "GET", key="k", path="/models/minilm-embeddings/endpoint")
    assert own == body["endpoints"][1]


def test_routes_of_kinds_not_deployed_do_not_exist(local):
    status, _, body = post(local, "/videos", {"prompt": "p"})
    assert status == 404 and body["error"]["code"] == "not_found"


def test_make_smoke_passes_for_every_text_model(local):
    import io

    from ops import smoke

    out = io.StringIO()
    served = ["gpt2-tgi", "minilm-embeddings", "chat-embeddings", "gpt2-cpu"]
    assert smoke.main(["--url", local["api_url"], "--key", "k", *[f"--model={m}" for m in served]], out=out) == 0, \
        out.getvalue()
    text = out.getvalue()
    for row in ("POST /generate ", "POST /embeddings ", "POST /chat ", "POST /models/chat-embeddings/embeddings ",
                "POST /models/gpt2-cpu (empty body)"):
        assert row in text, row


def test_text_the_model_cannot_take_is_never_a_5xx(local):
    long_text = "tiger " * 1333  # 7998 characters: within max_input_chars, far over MiniLM's 512 positions
    status, _, body = post(local, "/embeddings", {"inputs": [long_text, "a cat"]})
    assert status == 200, body  # truncated to the model's positions, as sentence-transformers does
    assert len(body["embeddings"]) == 2
    status, _, body = post(local, "/chat", {"messages": [{"role": "user", "content": long_text}]})
    assert status == 400 and body["error"]["code"] == "model_rejected_input", body
    assert "shorten the messages or lower max_new_tokens" in body["error"]["message"]
    status, _, body = post(local, "/models/gpt2-cpu", {"inputs": long_text})
    assert 400 <= status < 500, body
    status, _, body = post(local, "/models/chat-embeddings/embeddings", {"inputs": [long_text]})
    assert status == 200, body
    for payload, path in ((b'{"inputs": "\\ud800"}', "/generate"), (b'{"inputs": ["ok", "\\udfff"]}', "/embeddings"),
                          ({"inputs": "\u200b\u200d"}, "/generate"),
                          ({"messages": [{"role": "user", "content": "\ufeff "}]}, "/chat")):
        status, _, body = post(local, path, payload)
        assert status == 400 and body["error"]["code"] == "invalid_request", (payload, body)


def test_a_prompt_past_the_token_budget_is_answered_as_the_containers_answer_it(local):
    """gpt2-tgi's budget is the deployed one (MAX_INPUT_TOKENS 768, MAX_TOTAL_TOKENS 1024) in TGI's order and words;
    the stand-in's byte-level tokenizer makes a token of each character (docs/local.md)."""
    prefix = "the model refused the input (container status 422): Input validation error: "
    status, _, body = post(local, "/generate", {"inputs": "x" * 900})  # + the default 128 new tokens > 1024
    assert (status, body["error"]) == (400, {"code": "model_rejected_input", "message": prefix + (
        "`inputs` tokens + `max_new_tokens` must be <= 1024. Given: 900 `inputs` tokens and 128 `max_new_tokens`")})
    status, _, body = post(local, "/generate", {"inputs": "x" * 800, "parameters": {"max_new_tokens": 10}})
    assert (status, body["error"]["message"]) == (400, prefix + "`inputs` must have less than 768 tokens. Given: 800")
    assert post(local, "/generate", {"inputs": "x" * 760, "parameters": {"max_new_tokens": 2}})[0] == 200
    # The CPU pipeline has no budget of its own: past GPT-2's 1024 positions the toolkit's error, explained.
    status, _, body = post(local, "/models/gpt2-cpu", {"inputs": "x" * 1100, "parameters": {"max_new_tokens": 4}})
    assert (status, body["error"]["code"]) == (400, "model_rejected_input")
    assert body["error"]["message"] == (
        "the model refused the input (container status 400): the prompt and the tokens to generate are longer than "
        "the model's context window (the positions it can attend to): shorten the prompt or ask for fewer new tokens")
    assert post(local, "/models/gpt2-cpu", {"inputs": "x" * 1000, "parameters": {"max_new_tokens": 4}})[0] == 200


def test_error_rows_only_local_mode_answers_with_text_models(local):
    """The error catalog (docs/errors.md), the rows these models produce (test_local_mode.py covers the image rows)."""
    from local_rig import error_rows

    rows = error_rows()
    status, _, body = post(local, "/chat", {"messages": [{"role": "user", "content": "tiger " * 1300}]})
    assert (status, body["error"]["code"]) == (400, "model_rejected_input") and (400, "model_rejected_input") in rows
    status, _, body = post(local, "/images", {"prompt": "a tiger"})
    assert (status, body["error"]["code"]) == (503, "endpoint_unavailable") and (503, "endpoint_unavailable") in rows


def test_make_batch_embeds_a_file_of_texts_on_the_real_minilm(local, tmp_path):
    from test_local_batch import run_batch

    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly revenue rose by ten percent."]
    lines = [json.dumps({"inputs": text}) for text in texts] + [json.dumps({"inputs": texts})]
    result, entries = run_batch(local, tmp_path, "minilm-embeddings", lines,
                                [f"models={MODELS}", "jumpstart-stable-diffusion.source=endpoint:js-sd",
                                 "minilm-embeddings.hosting=serverless", "minilm-embeddings.memory_mb=2048",
                                 "minilm-embeddings.batch=true"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert [e["line"] for e in entries] == [1, 2, 3, 4]
    vectors = [e["result"]["embeddings"][0] for e in entries[:3]]
    assert all(len(v) == 384 and abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    # A line of several texts answers like the API: one vector per text, the same vectors.
    together = entries[3]["result"]["embeddings"]
    assert len(together) == 3 and all(abs(cosine(a, b) - 1) < 1e-4 for a, b in zip(together, vectors))
    # The serverless model's batch job runs on a CPU instance by default.
    assert "on 1 x ml.m5.xlarge" in result.stdout
