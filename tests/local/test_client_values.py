"""Values real clients send, against local mode over sockets: whole numbers for float parameters and integral
numbers for integer ones, OpenAI bodies as frameworks on the openai SDK write them (nulls, neutral fields), values
inside the documented ranges at their edges, numbers too long to convert, and the SDK's models.retrieve."""

from __future__ import annotations

import openai
import pytest
from local_rig import request

# Every text route that generates, with a body asking for little work, and where its parameters go.
GENERATING = [
    ("/generate", {"inputs": "Once upon a time"}, "parameters"),
    ("/models/gpt2-cpu", {"inputs": "Once upon a time"}, "parameters"),
    ("/chat", {"messages": [{"role": "user", "content": "Hi"}]}, "parameters"),
    ("/v1/completions", {"model": "gpt2-tgi", "prompt": "Once upon a time"}, None),
    ("/models/gpt2-cpu/v1/completions", {"model": "gpt2-cpu", "prompt": "Once upon a time"}, None),
    ("/v1/chat/completions", {"model": "chat-embeddings", "messages": [{"role": "user", "content": "Hi"}]}, None),
]


@pytest.fixture
def local(local_text):
    return local_text


def post(local, path, body):
    return request(local, "POST", body=body, key="k", path=path)


def sdk(local, base="/v1"):
    return openai.OpenAI(base_url=local["api_url"] + base, api_key="k", max_retries=0, timeout=120)


def _with(body: dict, where, **values) -> dict:
    if where is None:
        return {**body, **values}
    return {**body, where: values}


@pytest.mark.parametrize("path,body,where", GENERATING, ids=[p for p, _, _ in GENERATING])
def test_whole_numbers_for_floats_and_integral_numbers_for_integers_are_served(local, path, body, where):
    tokens = "max_new_tokens" if where else "max_tokens"
    # temperature 2 and repetition_penalty 2 as OpenAI and TGI clients write them (transformers refuses an int
    # temperature: the API hands the model 2.0).
    sampling = {"temperature": 2, tokens: 2, "top_p": 0.5}
    if where:
        sampling["repetition_penalty"] = 2
    status, _, answer = post(local, path, _with(body, where, **sampling))
    assert status == 200, answer
    # 3.0 is an integer in JSON Schema 2020-12 (the OpenAPI document's dialect) and to pydantic servers.
    status, _, answer = post(local, path, _with(body, where, **{tokens: 3.0, "temperature": 1.0}))
    assert status == 200, answer
    status, _, answer = post(local, path, _with(body, where, **{tokens: 2.5}))
    assert status == 400 and f"{tokens} must be an integer" in answer["error"]["message"], answer


def test_the_sdk_sends_whole_numbers_and_gets_answers(local):
    client = sdk(local)
    chat = client.chat.completions.create(model="chat-embeddings", messages=[{"role": "user", "content": "Hi"}],
                                          temperature=2, max_tokens=2, seed=354)
    assert isinstance(chat.choices[0].message.content, str)
    text = client.completions.create(model="gpt2-tgi", prompt="Once", temperature=2, max_tokens=2,
                                     extra_body={"seed": 354.0})
    assert isinstance(text.choices[0].text, str)


def test_openai_bodies_as_frameworks_send_them_are_served(local):
    # LangChain's BaseOpenAI._default_params (langchain_openai/llms/base.py): every field, unset ones as null.
    body = {"model": "gpt2-tgi", "prompt": "Once upon a time", "max_tokens": 2, "temperature": 0.7, "top_p": 1,
            "frequency_penalty": 0, "presence_penalty": 0, "n": 1, "seed": None, "logprobs": None,
            "logit_bias": {}, "best_of": 1, "stream": False, "user": None, "stream_options": None}
    status, _, answer = post(local, "/v1/completions", body)
    assert status == 200, answer
    chat = {"model": "chat-embeddings", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2,
            "temperature": None, "frequency_penalty": 0.0, "presence_penalty": None, "logprobs": False,
            "logit_bias": None, "seed": None, "n": None, "stop": None, "max_completion_tokens": None}
    status, _, answer = post(local, "/v1/chat/completions", chat)
    assert status == 200, answer


@pytest.mark.parametrize("field,value,words", [
    ("frequency_penalty", 0.5, 'frequency_penalty must be 0 or null (got 0.5; 0 only: the models apply no '
                               'frequency penalty'),
    ("presence_penalty", -1, "presence_penalty must be 0 or null (got -1; 0 only"),
    ("logit_bias", {"50256": -100}, "logit_bias must be {} (got 1 fields; {} only: the models take no logit bias)"),
    ("logprobs", 2, "logprobs must be null (got 2)"),
    ("best_of", 3, "best_of must be 1 or null (got 3; 1 only: one candidate per request)"),
])
def test_fields_a_model_cannot_honor_are_refused_clearly_at_any_other_value(local, field, value, words):
    status, _, answer = post(local, "/v1/completions", {"model": "gpt2-tgi", "prompt": "x", field: value})
    assert status == 400 and words in answer["error"]["message"], answer
    assert answer["error"]["type"] == "invalid_request_error"


def test_stop_works_on_chat_as_on_completions(local):
    client = sdk(local)
    # The tiny model's greedy answer to this prompt, then the same with its second character as a stop text: the
    # answer ends before it (OpenAI's stop).
    whole = client.chat.completions.create(model="chat-embeddings", messages=[{"role": "user", "content": "Hi"}],
                                           max_tokens=8, temperature=0).choices[0].message.content
    assert len(whole) >= 2, whole
    cut = client.chat.completions.create(model="chat-embeddings", messages=[{"role": "user", "content": "Hi"}],
                                         max_tokens=8, temperature=0, stop=whole[1]).choices[0].message.content
    assert cut == whole[:whole.index(whole[1])].strip()
    status, _, answer = post(local, "/chat", {"messages": [{"role": "user", "content": "Hi"}],
                                              "parameters": {"max_new_tokens": 8, "stop": [whole[1]]}})
    assert status == 200 and answer["reply"] == cut


@pytest.mark.parametrize("path,body,where", GENERATING, ids=[p for p, _, _ in GENERATING])
def test_sampling_values_the_model_cannot_compute_with_are_400_never_5xx(local, path, body, where):
    if where:  # our routes: bounded to what the model computes with
        for field in ("repetition_penalty", "temperature"):
            status, _, answer = post(local, path, _with(body, where, **{field: 5e-324, "do_sample": True}))
            assert status == 400 and f"{field} must be at least 0.01 (got 5e-324)" in answer["error"]["message"]
            status, _, answer = post(local, path, _with(body, where, **{field: 0.01, "do_sample": True,
                                                                         "max_new_tokens": 2}))
            assert status == 200, answer
    else:  # OpenAI's temperature: 0 and anything colder than 0.01 is greedy
        status, _, answer = post(local, path, {**body, "temperature": 5e-324, "max_tokens": 2})
        assert status == 200, answer


HUGE = "1" * 4301  # one digit over Python's integer-string conversion limit


@pytest.mark.parametrize("path", ["/generate", "/chat", "/embeddings", "/v1/completions", "/v1/chat/completions",
                                  "/v1/embeddings", "/embed", "/models/gpt2-cpu"])
def test_a_number_too_long_to_convert_is_400_on_every_json_route(local, path):
    status, _, answer = post(local, path, f'{{"inputs": "a", "extra": {HUGE}}}'.encode())
    assert status == 400, answer
    assert answer["error"]["message"] == ("request body holds a number of more than 4,300 digits; no field takes "
                                          "one")


def test_the_sdk_retrieves_a_model_by_id(local):
    client = sdk(local)
    listed = {model.id for model in client.models.list()}
    assert "gpt2-tgi" in listed
    model = client.models.retrieve("gpt2-tgi")
    assert model.id == "gpt2-tgi" and model.object == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.body["code"] == "model_not_found"
    assert "no model \"gpt-4o\" here; the models are" in missing.value.body["message"]
    # At a model's own base URL only that model is listed, and retrieved.
    assert sdk(local, "/models/gpt2-cpu/v1").models.retrieve("gpt2-cpu").id == "gpt2-cpu"
    with pytest.raises(openai.NotFoundError):
        sdk(local, "/models/gpt2-cpu/v1").models.retrieve("gpt2-tgi")
