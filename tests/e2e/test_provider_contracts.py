"""Provider contracts the gateway keeps on both paths (direct relay and LiteLLM), seen through the openai SDK.

The fake provider refuses what the real providers refuse (tests/support/fake_provider.py), so a request the
gateway shapes wrongly on either path fails here.
"""

import openai
import pytest
from django.conf import settings

from tests.support.request_log import logged_rows
from tests.usage.conftest import wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]
REPEAT_50 = [{"role": "user", "content": "REPEAT 50"}]


def add_model(name: str, litellm_model: str, api_base: str, **fields) -> None:
    from routing.services import create_model

    create_model(name, litellm_model=litellm_model, api_base=api_base, **fields)


def client_for(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=30)


# 5. o-series and gpt-5: the token field the model accepts


@pytest.mark.parametrize("provider_model", ["o3", "gpt-5-mini"])
@pytest.mark.parametrize(
    ("sent", "expected"),
    [({}, 5), ({"max_tokens": 100}, 5), ({"max_tokens": 3}, 3), ({"max_completion_tokens": 100}, 5)],
)
def test_a_capped_reasoning_model_gets_max_completion_tokens(
    openai_client, fake_provider, provider_model, sent, expected
):
    add_model("thinker", f"openai/{provider_model}", fake_provider.openai_base, max_tokens=5)
    completion = openai_client.chat.completions.create(model="thinker", messages=REPEAT_50, **sent)
    body = fake_provider.last_request.body
    assert "max_tokens" not in body
    assert body["max_completion_tokens"] == expected
    assert len(completion.choices[0].message.content.split()) == expected


def test_an_uncapped_reasoning_model_gets_the_callers_max_tokens_as_max_completion_tokens(openai_client, fake_provider):
    add_model("thinker", "openai/o4-mini", fake_provider.openai_base)
    completion = openai_client.chat.completions.create(model="thinker", messages=REPEAT_50, max_tokens=4, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in completion if chunk.choices).split() == [
        "w1", "w2", "w3", "w4",
    ]  # fmt: skip
    body = fake_provider.last_request.body
    assert "max_tokens" not in body and body["max_completion_tokens"] == 4


# 6. provider prefixes: self-hosted OpenAI-compatible servers


@pytest.mark.parametrize("prefix", ["hosted_vllm", "openai_like", "custom_openai"])
def test_a_self_hosted_model_id_reaches_its_server_without_the_provider_prefix(openai_client, fake_provider, prefix):
    add_model("local", f"{prefix}/fake-local", fake_provider.openai_base)
    for stream in (False, True):
        completion = openai_client.chat.completions.create(model="local", messages=HELLO, stream=stream)
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in completion if c.choices).startswith("Hello!")
        else:
            assert completion.choices[0].message.content == "Hello! You said: hi there"
        assert fake_provider.last_request.body["model"] == "fake-local"


@pytest.mark.parametrize("prefix", ["hosted_vllm", "openai_like", "custom_openai"])
def test_a_self_hosted_model_without_api_base_is_never_called(openai_client, fake_provider, monkeypatch, prefix):
    """A row saved before the rule (or written around it) must not send its prompts to api.openai.com."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-gateways-openai-key-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_provider.openai_base)  # where a default OpenAI client would go
    monkeypatch.setenv("OPENAI_API_BASE", fake_provider.openai_base)
    from routing.models import Deployment

    add_model("local", f"{prefix}/fake-local", fake_provider.openai_base)
    deployment = Deployment.objects.get(model__name="local")
    deployment.api_base = ""
    deployment.save()  # save() never validates: as a row written around the rule
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client.chat.completions.create(model="local", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "provider_not_configured"
    assert "API base" in caught.value.body["message"]
    assert fake_provider.requests == []


# 7. unknown request fields: in the body for OpenAI-wire providers, allowlisted or refused for the others


def test_unknown_fields_reach_an_openai_wire_provider_in_the_body(openai_client, fake_provider):
    openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, extra_body={"top_k": 3, "chat_template_kwargs": {"thinking": False}}
    )
    body = fake_provider.last_request.body
    assert (body["top_k"], body["chat_template_kwargs"]) == (3, {"thinking": False})
    assert "extra_body" not in body


def test_anthropic_specific_fields_reach_anthropic_as_top_level_fields(openai_client, fake_provider):
    completion = openai_client.chat.completions.create(
        model="claude-3-5-sonnet-20241022", messages=HELLO, extra_body={"top_k": 3}
    )
    assert completion.choices[0].message.content == "Hello! You said: hi there"
    body = fake_provider.last_request.body
    assert fake_provider.last_request.path == "/v1/messages"
    assert body["top_k"] == 3 and "extra_body" not in body


def test_a_field_anthropic_cannot_take_is_refused_by_the_gateway_naming_it(openai_client, fake_provider):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model="claude-3-5-sonnet-20241022", messages=HELLO, extra_body={"chat_template_kwargs": {}}
        )
    error = caught.value.body
    assert error["param"] == "chat_template_kwargs" and error["code"] == "unsupported_parameter"
    assert "chat_template_kwargs" in error["message"] and "anthropic" in error["message"]
    assert fake_provider.requests == []


# 8. n, max_n, refused fields, and the tokens-per-minute reservation


def test_n_above_the_models_max_n_is_refused_naming_n(openai_client, fake_provider):
    add_model("two-at-most", "openai/fake-two", fake_provider.openai_base, max_n=2)
    assert len(openai_client.chat.completions.create(model="two-at-most", messages=HELLO, n=2).choices) == 2
    fake_provider.reset()
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="two-at-most", messages=HELLO, n=3)
    assert caught.value.body["param"] == "n" and "2" in caught.value.body["message"]
    assert fake_provider.requests == []


@pytest.mark.parametrize(
    "field", [{"service_tier": "priority"}, {"web_search_options": {}}, {"audio": {"voice": "alloy", "format": "wav"}}]
)
def test_fields_that_change_the_price_are_refusable_per_model(openai_client, fake_provider, field):
    add_model("plain", "openai/fake-plain", fake_provider.openai_base,
              refused_params="service_tier, web_search_options,audio")  # fmt: skip
    [(name, value)] = field.items()
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="plain", messages=HELLO, **{name: value})
    assert caught.value.body["param"] == name and name in caught.value.body["message"]
    assert fake_provider.requests == []
    assert openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, **{name: value}).choices


def test_the_token_reservation_multiplies_the_cap_by_n(gateway_url, policy, fake_provider):
    from keys.services import create_api_key

    wait_for_minute_window()
    client = client_for(gateway_url, create_api_key(name="tpm-30", tpm_limit=30).plaintext)
    assert client.chat.completions.create(model="capped", messages=HELLO, n=1).choices  # reserves 5 + the prompt
    with pytest.raises(openai.RateLimitError):  # 8 choices x 5 tokens may be 40 tokens: more than 30 per minute
        client.chat.completions.create(model="capped", messages=HELLO, n=8)
    assert len(fake_provider.requests) == 1


def test_the_token_reservation_counts_the_prompt(gateway_url, policy, fake_provider):
    from keys.services import create_api_key

    wait_for_minute_window()
    client = client_for(gateway_url, create_api_key(name="tpm-100", tpm_limit=100).plaintext)
    assert client.chat.completions.create(model="capped", messages=HELLO).choices  # uses 7 tokens
    long_prompt = [{"role": "user", "content": "word " * 200}]  # about 250 tokens by the characters/4 estimate
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="capped", messages=long_prompt)
    assert len(fake_provider.requests) == 1


# 9. server-sent-event lines of any size


def test_a_delta_line_over_a_mebibyte_is_relayed_whole(openai_client, fake_provider):
    fake_provider.fail_next("big_line", size=1536 * 1024)
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "A" * (1536 * 1024) + "Hello! You said: hi there"
    assert chunks[-1].choices[0].finish_reason == "stop"
    [row] = logged_rows()
    assert (row.status, row.end_reason) == (200, "completed")


def test_a_line_over_the_relays_cap_ends_the_stream_with_an_error_and_an_honest_row(
    openai_client, fake_provider, settings
):
    if not settings.LLMPROXY_DIRECT_RELAY:
        pytest.skip("the line cap is the direct relay's (LiteLLM's HTTP client has none)")
    settings.LLMPROXY_MAX_SSE_LINE_BYTES = 256 * 1024
    fake_provider.fail_next("big_line", size=512 * 1024)
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "line" in str(caught.value.message)
    [row] = logged_rows()
    assert (row.status, row.end_reason, row.streamed) == (502, "provider_error", True)


def test_the_relay_line_cap_setting_defaults_to_32_mib():
    assert settings.LLMPROXY_MAX_SSE_LINE_BYTES == 32 * 1024 * 1024
