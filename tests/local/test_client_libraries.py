"""The clients people already have, as they are: the official openai SDK on the /v1 routes and huggingface_hub's
InferenceClient on /embed, /images and /generate, driven against local mode over real sockets. Compatibility is
proven by the clients' own parsing, not by our reading of their docs. Each client sends the API key its own way
(`Authorization: Bearer`), as it would to the deployed API with bearer_keys."""

from __future__ import annotations

import io
import json
import math
import urllib.error
import urllib.request

import numpy
import openai
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from local_rig import request
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def hub_client_may_reach_loopback(monkeypatch):
    """The tests run with HF_HUB_OFFLINE=1 (tests/conftest.py: no model hub), which also blocks InferenceClient's
    calls to any URL. Lifted here only: every client below is given a 127.0.0.1 URL of local mode, never a model
    id (which it would resolve on the hub)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False)


def sdk(local, key, base="/v1"):
    return openai.OpenAI(base_url=local["api_url"] + base, api_key=key, max_retries=0, timeout=120)


# ------------------------------------------------------------------------------------------------------ openai


def test_openai_images_generate_answers_presigned_urls_of_stored_pngs(local):
    result = sdk(local, "test-key").images.generate(
        model="stable-diffusion", prompt="a red apple", size="64x64", n=2, response_format="url",
        extra_body={"steps": 2, "seed": 11})
    assert len(result.data) == 2 and isinstance(result.created, int)
    for image in result.data:
        data = urllib.request.urlopen(image.url, timeout=30).read()
        assert data.startswith(PNG_SIGNATURE)
        assert Image.open(io.BytesIO(data)).size == (64, 64)
    # The same request at the per-model base URL, with the same seed: the same first image. OpenAI's images API needs
    # no model (the route's serves it), as OpenAI's own does not.
    again = sdk(local, "test-key", "/models/stable-diffusion/v1").images.generate(
        prompt="a red apple", size="64x64", n=2, extra_body={"steps": 2, "seed": 11})
    assert urllib.request.urlopen(again.data[0].url, timeout=30).read() == \
        urllib.request.urlopen(result.data[0].url, timeout=30).read()


def test_openai_errors_are_the_sdks_own_exceptions_with_our_code_and_message(local):
    client = sdk(local, "test-key")
    with pytest.raises(openai.NotFoundError) as wrong_model:
        client.images.generate(model="dall-e-3", prompt="a cat", size="64x64")
    assert wrong_model.value.code == "model_not_found" and wrong_model.value.type == "invalid_request_error"
    assert '"dall-e-3" is not served at this route, which serves "stable-diffusion"' in wrong_model.value.message
    with pytest.raises(openai.BadRequestError) as b64:
        client.images.generate(model="stable-diffusion", prompt="a cat", response_format="b64_json")
    assert "response_format must be \"url\" or null (got \"b64_json\"" in b64.value.body["message"]
    with pytest.raises(openai.BadRequestError) as size:
        client.images.generate(model="stable-diffusion", prompt="a cat", size="1024x1792")
    assert size.value.body["message"] == ("size must be auto (512x512) or WIDTHxHEIGHT such as 512x512, each side a "
                                          'multiple of 8 from 64 to 768 (got "1024x1792")')
    with pytest.raises(openai.BadRequestError) as unknown:
        client.images.generate(model="stable-diffusion", prompt="a cat", quality="hd")
    assert 'unknown field "quality"' in unknown.value.message
    with pytest.raises(openai.PermissionDeniedError):  # a wrong key: the gateway's 403
        sdk(local, "wrong-key").images.generate(model="stable-diffusion", prompt="a cat")
    # Nothing of the refused requests was made: every stored image is one the test above asked for.


def test_openai_embeddings_in_both_encodings_match_our_own_route(local_text):
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar."]
    client = sdk(local_text, "k")
    default = client.embeddings.create(model="minilm-embeddings", input=texts)  # the SDK asks for base64
    floats = client.embeddings.create(model="minilm-embeddings", input=texts, encoding_format="float")
    status, _, ours = request(local_text, "POST", {"inputs": texts}, key="k", path="/embeddings")
    assert status == 200
    assert [d.index for d in default.data] == [0, 1] and default.model == "minilm-embeddings"
    for decoded, plain, own in zip(default.data, floats.data, ours["embeddings"]):
        assert len(decoded.embedding) == len(plain.embedding) == 384
        assert numpy.allclose(decoded.embedding, own, atol=1e-6)  # float32 of the same vector
        assert plain.embedding == pytest.approx(own, abs=1e-9)
    one = client.embeddings.create(model="minilm-embeddings", input="just one text", encoding_format="float")
    assert len(one.data) == 1 and math.isclose(sum(x * x for x in one.data[0].embedding), 1, rel_tol=1e-6)
    with pytest.raises(openai.BadRequestError) as tokens:
        client.embeddings.create(model="minilm-embeddings", input=[[101, 2054]])
    assert tokens.value.body["message"].startswith("input must be text or a list of texts; token ids")


def test_openai_chat_and_completions_on_the_text_models(local_text):
    client = sdk(local_text, "k")
    chat = client.chat.completions.create(
        model="chat-embeddings", max_tokens=5, temperature=0,
        messages=[{"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "text", "text": "Hello!"}]}])
    assert chat.object == "chat.completion" and isinstance(chat.choices[0].message.content, str)
    assert chat.choices[0].message.role == "assistant" and chat.model == "chat-embeddings"
    first = client.completions.create(model="gpt2-tgi", prompt="Once upon a time", max_tokens=5, seed=3,
                                      temperature=0.8, stop=["\n"])
    second = client.completions.create(model="gpt2-tgi", prompt="Once upon a time", max_tokens=5, seed=3,
                                       temperature=0.8, stop=["\n"])
    assert first.object == "text_completion" and first.choices[0].text == second.choices[0].text  # TGI's seed
    # The CPU pipeline model at its own base URL; it takes no seed, so the SDK's seed is refused by name.
    cpu = sdk(local_text, "k", "/models/gpt2-cpu/v1")
    assert isinstance(cpu.completions.create(model="gpt2-cpu", prompt="Hi", max_tokens=3).choices[0].text, str)
    with pytest.raises(openai.BadRequestError) as seed:
        cpu.completions.create(model="gpt2-cpu", prompt="Hi", seed=1)
    assert 'unknown field "seed"' in seed.value.message
    with pytest.raises(openai.BadRequestError) as stream:  # a model deployed without streaming
        cpu.completions.create(model="gpt2-cpu", prompt="Hi", stream=True)
    assert stream.value.code == "streaming_off" and "-c <model>.streaming=true" in stream.value.message
    with pytest.raises(openai.BadRequestError) as bounds:
        client.completions.create(model="gpt2-tgi", prompt="x", max_tokens=100000, temperature=3)
    assert "max_tokens must be at most 256 (got 100000)" in bounds.value.message  # local max_new_tokens
    assert "temperature must be at most 2" in bounds.value.message


def test_openai_streams_completions_and_chat_chunk_by_chunk(local_text):
    client = sdk(local_text, "k")
    # Greedy: the same answer streamed and whole. A token inside a UTF-8 character has no text of its own (the tiny
    # model's tokens are bytes), so there are up to 6 text chunks; the last one before the finish carries any tail.
    chunks = list(client.completions.create(model="gpt2-tgi", prompt="Once upon a time", max_tokens=6,
                                            temperature=0, stream=True, stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices]
    whole = client.completions.create(model="gpt2-tgi", prompt="Once upon a time", max_tokens=6, temperature=0)
    assert "".join(texts) == whole.choices[0].text
    assert 3 <= len(texts) <= 7 and chunks[-2].choices[0].finish_reason == "length" and texts[-1] == ""
    assert chunks[-1].usage.completion_tokens == 6
    chat = list(client.chat.completions.create(model="chat-embeddings", max_tokens=4, stream=True,
                                               messages=[{"role": "user", "content": "Hello!"}]))
    assert chat[0].choices[0].delta.role == "assistant" and chat[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" for c in chat)


def test_openai_models_lists_every_model_with_openai_routes(local_text):
    listed = [m.id for m in sdk(local_text, "k").models.list()]
    assert listed == ["gpt2-tgi", "minilm-embeddings", "chat-embeddings", "gpt2-cpu", "jumpstart-stable-diffusion"]
    assert [m.id for m in sdk(local_text, "k", "/models/gpt2-cpu/v1").models.list()] == ["gpt2-cpu"]


# -------------------------------------------------------------------------------------------- huggingface_hub


def test_huggingface_feature_extraction_on_embed(local_text):
    client = InferenceClient(model=local_text["api_url"] + "/embed", token="k")
    vectors = client.feature_extraction("A man is playing a guitar.")
    assert vectors.shape == (1, 384)
    status, _, ours = request(local_text, "POST", {"inputs": "A man is playing a guitar."}, key="k",
                              path="/embeddings")
    assert numpy.allclose(vectors[0], ours["embeddings"][0], atol=1e-6)
    with pytest.raises(HfHubHTTPError) as refused:
        client.feature_extraction("x", normalize=False)
    assert refused.value.response.status_code == 400
    assert "normalize must be true (got false; vectors are always unit length)" in refused.value.response.text


def test_huggingface_text_generation_and_chat(local_text):
    generated = InferenceClient(model=local_text["api_url"] + "/generate", token="k").text_generation(
        "Once upon a time", max_new_tokens=4, seed=2)
    assert isinstance(generated, str)
    chat = InferenceClient(base_url=local_text["api_url"] + "/v1", api_key="k").chat_completion(
        [{"role": "user", "content": "Hi"}], model="chat-embeddings", max_tokens=4)
    assert isinstance(chat.choices[0].message.content, str)
    # A model given as a URL: huggingface_hub appends /v1/chat/completions and sends the placeholder model "dummy",
    # which the route's own model serves (and names in its answer).
    by_url = InferenceClient(model=local_text["api_url"] + "/models/chat-embeddings", token="k").chat_completion(
        [{"role": "user", "content": "Hi"}], max_tokens=4)
    assert by_url.model == "chat-embeddings" and isinstance(by_url.choices[0].message.content, str)


def test_huggingface_streams_text_generation_and_chat(local_text):
    client = InferenceClient(model=local_text["api_url"] + "/generate", token="k")
    tokens = list(client.text_generation("Once upon a time", max_new_tokens=5, stream=True))
    assert len(tokens) == 5 and all(isinstance(t, str) for t in tokens)
    # The same greedy answer; a token that ends inside a UTF-8 character has no text of its own (TGI's
    # decode_token), so the tokens' text is the whole answer's, up to such a tail.
    assert client.text_generation("Once upon a time", max_new_tokens=5).startswith("".join(tokens))
    detailed = list(client.text_generation("Once upon a time", max_new_tokens=3, stream=True, details=True))
    assert detailed[-1].details.finish_reason == "length" and detailed[-1].generated_text is not None
    chatter = InferenceClient(base_url=local_text["api_url"] + "/v1", api_key="k")  # it holds the open stream
    chat = list(chatter.chat_completion([{"role": "user", "content": "Hi"}], model="chat-embeddings", max_tokens=4,
                                        stream=True))
    assert chat[-1].choices[0].finish_reason == "stop"
    assert isinstance("".join(c.choices[0].delta.content or "" for c in chat), str)


def test_huggingface_text_to_image_gets_the_image_itself(local):
    client = InferenceClient(model=local["api_url"] + "/images", token="test-key")
    image = client.text_to_image("a red apple", width=64, height=72, num_inference_steps=2, seed=5)
    assert image.size == (64, 72)
    # What it sent, by hand: Accept image/png answers the PNG bytes (nothing stored), with its seed.
    req = urllib.request.Request(local["api_url"] + "/images", method="POST",
                                 data=b'{"inputs": "a red apple", "parameters": {"width": 64, "height": 72, '
                                      b'"num_inference_steps": 2, "seed": 5}}',
                                 headers={"Authorization": "Bearer test-key", "Accept": "image/png",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as response:
        assert response.headers["Content-Type"] == "image/png" and response.headers["X-Seed"] == "5"
        data = response.read()
    assert data.startswith(PNG_SIGNATURE) and Image.open(io.BytesIO(data)).size == (64, 72)
    with pytest.raises(HfHubHTTPError) as too_wide:
        client.text_to_image("a red apple", width=100000)
    assert too_wide.value.response.status_code == 400 and "width must be at most 768" in too_wide.value.response.text
    # This model makes PNG: asking for JPEG is refused before the model runs.
    status, _, body = post_json(local, "/images", {"prompt": "a red apple"},
                                {"Accept": "image/jpeg", "x-api-key": "test-key"})
    assert (status, body["error"]["code"]) == (406, "not_acceptable")


def post_json(local, path, body, headers):
    req = urllib.request.Request(local["api_url"] + path, method="POST", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/json"
        return error.code, dict(error.headers), json.loads(error.read())


def test_a_bearer_key_is_the_api_key_and_no_key_at_all_is_401(local):
    body = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 1}
    for headers, status in (({"Authorization": "Bearer test-key"}, 200), ({"Authorization": "Bearer nope"}, 403),
                            ({"Authorization": "Basic dGVzdC1rZXk="}, 401), ({}, 401),
                            ({"x-api-key": "test-key", "Authorization": "Bearer other"}, 200)):
        assert post_json(local, "/images", body, headers)[0] == status, headers
