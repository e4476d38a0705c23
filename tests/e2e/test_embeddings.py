"""POST /v1/embeddings: the OpenAI SDK against a live gateway, the fake provider recording what it received.

Runs on both paths: the direct relay, and with LLMPROXY_DIRECT_RELAY=0 through litellm.aembedding.
"""

import base64
import struct
from decimal import Decimal
from functools import partial

import httpx
import openai
import pytest

from tests.support.fake_embeddings import vector
from tests.support.openai_gateway import assert_invalid_request, client_for, post_json
from tests.support.request_log import logged_rows
from tests.usage.conftest import wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)

post = partial(post_json, path="/v1/embeddings")  # post(gateway_url, key, body)

SMALL = "text-embedding-3-small"  # priced in LiteLLM's cost map: $0.02 per million input tokens
SMALL_PRICE = Decimal("0.00000002")


@pytest.fixture
def embedding_models(policy, fake_provider) -> None:
    from routing.models import ModelAlias
    from routing.services import create_model

    small = create_model(SMALL, litellm_model=f"openai/{SMALL}", api_base=fake_provider.openai_base)
    create_model("ada", litellm_model="openai/text-embedding-ada-002", api_base=fake_provider.openai_base)
    ModelAlias.objects.create(alias="embed", target=small)


@pytest.fixture
def client(openai_client, embedding_models) -> openai.OpenAI:
    return openai_client


def test_single_input(client, fake_provider):
    result = client.embeddings.create(model=SMALL, input="hello embedding world")
    assert result.object == "list" and len(result.data) == 1
    assert result.data[0].index == 0 and result.data[0].object == "embedding"
    assert result.data[0].embedding == vector(SMALL, "hello embedding world", 1536)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)
    sent = fake_provider.last_request
    assert sent.path == "/v1/embeddings"
    assert (sent.body["model"], sent.body["input"]) == (SMALL, "hello embedding world")


def test_batch_of_strings(client):
    texts = ["one", "two words", "and three words"]
    result = client.embeddings.create(model=SMALL, input=texts)
    assert [item.index for item in result.data] == [0, 1, 2]
    assert [item.embedding for item in result.data] == [vector(SMALL, text, 1536) for text in texts]
    assert result.usage.prompt_tokens == 6


@pytest.mark.parametrize(("tokens", "count"), [([11, 22, 33], 3), ([[1, 2], [3, 4, 5]], 5)])
def test_token_arrays(client, fake_provider, tokens, count):
    result = client.embeddings.create(model=SMALL, input=tokens)
    items = tokens if isinstance(tokens[0], list) else [tokens]
    assert [item.embedding for item in result.data] == [vector(SMALL, item, 1536) for item in items]
    assert result.usage.prompt_tokens == count
    assert fake_provider.last_request.body["input"] == tokens


def test_base64_decodes_to_the_float_vectors(client):
    floats = client.embeddings.create(model=SMALL, input=["a", "b"], encoding_format="float")
    packed = client.embeddings.create(model=SMALL, input=["a", "b"], encoding_format="base64")
    for as_float, as_base64 in zip(floats.data, packed.data, strict=True):
        assert isinstance(as_base64.embedding, str)
        raw = base64.b64decode(as_base64.embedding)
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == as_float.embedding


def test_dimensions_are_forwarded(client, fake_provider):
    result = client.embeddings.create(model=SMALL, input="short", dimensions=256)
    assert len(result.data[0].embedding) == 256
    assert fake_provider.last_request.body["dimensions"] == 256


def test_alias_is_rewritten(client, fake_provider):
    client.embeddings.create(model="embed", input="x")
    assert fake_provider.last_request.body["model"] == SMALL


def test_model_not_allowed_is_a_400_naming_model(client, fake_provider):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="text-embedding-3-large", input="x")
    assert caught.value.body["param"] == "model" and caught.value.body["code"] == "model_not_found"
    assert fake_provider.requests == []


def test_key_allowlist(gateway_url, embedding_models, fake_provider):
    from keys.services import create_api_key

    chat_only = client_for(gateway_url, create_api_key(name="chat-only", models=["gpt-4o-mini"]).plaintext)
    with pytest.raises(openai.BadRequestError) as caught:
        chat_only.embeddings.create(model=SMALL, input="x")
    assert "may not use" in caught.value.body["message"] and caught.value.body["param"] == "model"
    embedder = client_for(gateway_url, create_api_key(name="embedder", models=["embed"]).plaintext)
    assert len(embedder.embeddings.create(model=SMALL, input="x").data) == 1  # the alias's target
    with pytest.raises(openai.BadRequestError):
        embedder.embeddings.create(model="ada", input="x")


def test_key_rpm_limit(gateway_url, embedding_models):
    from keys.services import create_api_key

    wait_for_minute_window()
    key = create_api_key(name="rpm-2", rpm_limit=2).plaintext
    statuses = [post(gateway_url, key, {"model": SMALL, "input": "x"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = post(gateway_url, key, {"model": SMALL, "input": "x"})
    assert refused.json()["error"]["type"] == "rate_limit_exceeded" and "Retry-After" in refused.headers


def test_tokens_per_minute_reserve_the_input_not_a_completion_default(gateway_url, embedding_models):
    from keys.services import create_api_key

    wait_for_minute_window()
    key = create_api_key(name="tpm-200", tpm_limit=200).plaintext
    embedded = post(gateway_url, key, {"model": SMALL, "input": ["some words"] * 10})
    assert embedded.status_code == 200
    assert embedded.headers["x-ratelimit-remaining-tokens"] == str(200 - 20)  # the estimate: 10 inputs of 10 chars / 4
    chat = httpx.post(f"{gateway_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=20,
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert chat.status_code == 429  # a chat call without max_tokens reserves 4096 output tokens


def test_usage_rows_count_input_tokens_and_cost(client):
    client.embeddings.create(model="embed", input=["four words right here", "two more"])
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="nope", input="x")
    done, refused = logged_rows()
    assert (done.endpoint, done.requested_model, done.resolved_model, done.status) == (
        "embeddings",
        "embed",
        SMALL,
        200,
    )
    assert (done.prompt_tokens, done.completion_tokens, done.total_tokens, done.usage_estimated) == (6, 0, 6, False)
    assert done.cost_usd == 6 * SMALL_PRICE
    assert not done.streamed and (done.status, done.end_reason) == (200, "completed")
    assert (refused.endpoint, refused.status, refused.end_reason) == ("embeddings", 400, "rejected")
    from usage.models import DailyUsage

    rollup = DailyUsage.objects.get(endpoint="embeddings", model=SMALL)
    assert (rollup.requests, rollup.prompt_tokens, rollup.cost_usd) == (1, 6, 6 * SMALL_PRICE)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": SMALL}, "input"),
        ({"model": SMALL, "input": ""}, "input"),
        ({"model": SMALL, "input": []}, "input"),
        ({"model": SMALL, "input": 5}, "input"),
        ({"model": SMALL, "input": {"text": "x"}}, "input"),
        ({"model": SMALL, "input": [None]}, "input.[0]"),
        ({"model": SMALL, "input": ["ok", ""]}, "input.[1]"),
        ({"model": SMALL, "input": ["ok", 3]}, "input.[1]"),
        ({"model": SMALL, "input": [1, -2]}, "input.[1]"),
        ({"model": SMALL, "input": [1, "a"]}, "input.[1]"),
        ({"model": SMALL, "input": [1, 2**70]}, "input.[1]"),
        ({"model": SMALL, "input": [[1], []]}, "input.[1]"),
        ({"model": SMALL, "input": [[1], [True]]}, "input.[1].[0]"),
        ({"model": SMALL, "input": ["x"] * 2049}, "input"),
        ({"model": SMALL, "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": SMALL, "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": SMALL, "input": "x", "dimensions": "many"}, "dimensions"),
        ({"model": SMALL, "input": "x", "user": 7}, "user"),
        ({"model": 7, "input": "x"}, "model"),
        ({"input": "x"}, "model"),
        ({"model": SMALL, "input": "x", "api_base": "http://evil.example"}, "api_base"),
    ],
)
def test_bad_input_is_an_openai_shaped_400_naming_the_param(gateway_url, api_key, embedding_models, fake_provider,
                                                           body, param):  # fmt: skip
    assert_invalid_request(post(gateway_url, api_key, body), param)
    assert fake_provider.requests == []


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"model": "x", "input": "' + b"\xff" + b'"}'])
def test_unreadable_bodies_are_400s(gateway_url, api_key, embedding_models, body):
    response = httpx.post(f"{gateway_url}/v1/embeddings", content=body, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_provider_refusal_is_a_400_with_the_providers_message(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="ada", input="x", dimensions=8)  # ada has no dimensions
    assert "dimensions" in caught.value.body["message"]


def test_missing_key_is_a_401(gateway_url, embedding_models):
    response = httpx.post(f"{gateway_url}/v1/embeddings", json={"model": SMALL, "input": "x"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_wrong_method_is_a_405(gateway_url, api_key):
    response = httpx.get(f"{gateway_url}/v1/embeddings", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_use_litellm_goes_through_litellm_aembedding(client, fake_provider):
    from routing.models import Deployment

    deployment = Deployment.objects.get(model__name=SMALL)
    deployment.use_litellm = True
    deployment.save()
    floats = client.embeddings.create(model=SMALL, input=["p", "q"], encoding_format="float")
    assert "x-stainless-retry-count" in fake_provider.last_request.headers  # LiteLLM's OpenAI SDK client
    assert [item.embedding for item in floats.data] == [vector(SMALL, text, 1536) for text in ["p", "q"]]
    packed = client.embeddings.create(model=SMALL, input="p")  # the SDK asks for base64 and decodes it
    assert packed.data[0].embedding == vector(SMALL, "p", 1536)
    assert packed.model and packed.usage.prompt_tokens == 1


def test_user_and_unknown_fields_reach_the_provider(client, fake_provider):
    client.embeddings.create(model=SMALL, input="x", user="end-user-1")
    assert fake_provider.last_request.body["user"] == "end-user-1"
    with pytest.raises(openai.BadRequestError) as caught:  # OpenAI refuses fields it does not know: so does the fake
        client.embeddings.create(model=SMALL, input="x", extra_body={"vendor_flag": 1})
    assert "vendor_flag" in caught.value.body["message"]
    assert caught.value.body["code"] == "provider_rejected_request"
