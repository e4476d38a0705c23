"""POST /v1/messages with Anthropic models: the official `anthropic` SDK against a live gateway, the fake provider
recording what it got. Anthropic models are relayed natively on both paths (the direct relay, and with
LLMPROXY_DIRECT_RELAY=0); errors are Anthropic-shaped everywhere. test_messages_translated.py has the other models.
"""

import time

import anthropic
import httpx
import orjson
import pytest

from tests.support.anthropic_gateway import (
    CAPPED_CLAUDE,
    HELLO,
    PRICES,
    PROVIDER_KEY,
    SONNET,
    TRANSLATED,
    WEATHER_TOOL,
    assert_anthropic_error,
    body_with,
    client_for,
    post,
    user_says,
)
from tests.support.fake_wire import STREAM_ERROR_MESSAGE
from tests.support.request_log import logged_rows, rows_once_logged
from tests.usage.conftest import wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def claude_models(policy, fake_provider, monkeypatch) -> None:
    from routing.models import ModelAlias
    from routing.services import create_model

    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    sonnet = create_model(SONNET, api_base=fake_provider.anthropic_base, api_key_env="ANTHROPIC_API_KEY")
    ModelAlias.objects.create(alias="sonnet", target=sonnet)


@pytest.fixture
def anthropic_client(gateway_url, api_key, claude_models) -> anthropic.Anthropic:
    return client_for(gateway_url, api_key)


# Anthropic models, relayed natively.


def test_message_is_relayed_natively(anthropic_client, fake_provider):
    message = anthropic_client.messages.create(model=SONNET, max_tokens=100, messages=HELLO)
    assert message.type == "message" and message.content[0].text == "Hello! You said: hello"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    sent = fake_provider.last_request
    assert sent.path == "/v1/messages"
    assert sent.body == {"model": SONNET, "messages": HELLO, "max_tokens": 100}
    assert sent.headers["x-api-key"] == PROVIDER_KEY and "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == anthropic_client.default_headers["anthropic-version"]  # the caller's


@pytest.mark.parametrize("how", ["x-api-key", "bearer"])
def test_the_key_comes_as_x_api_key_or_bearer(gateway_url, api_key, claude_models, monkeypatch, how):
    monkeypatch.delenv("ANTHROPIC_API_KEY")  # else the SDK would also send it
    if how == "x-api-key":
        caller = client_for(gateway_url, None, default_headers={"x-api-key": api_key})
    else:
        caller = client_for(gateway_url, None, auth_token=api_key)
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    assert caller.messages.create(model=SONNET, max_tokens=10, messages=HELLO).content[0].text


def test_version_defaults_and_beta_is_forwarded(gateway_url, api_key, claude_models, fake_provider):
    body = {"model": SONNET, "max_tokens": 10, "messages": HELLO}
    assert post(gateway_url, api_key, body, **{"anthropic-beta": "prompt-caching-2024-07-31"}).status_code == 200
    sent = fake_provider.last_request.headers
    assert sent["anthropic-version"] == "2023-06-01" and sent["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert not any(api_key in value for value in sent.values())  # the caller's key never reaches the provider


def test_streaming_text_deltas_and_final_usage(anthropic_client, fake_provider):
    fake_provider.stream_chunks = 3
    with anthropic_client.messages.stream(
        model=SONNET, max_tokens=100, messages=[{"role": "user", "content": "one two"}]
    ) as s:
        deltas = list(s.text_stream)
        final = s.get_final_message()
    assert len(deltas) == 3 and "".join(deltas) == "Hello! You said: one two"
    assert final.content[0].text == "".join(deltas) and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 5)
    assert fake_provider.last_request.body["stream"] is True


def test_system_prompt_as_string_and_blocks(anthropic_client, fake_provider):
    anthropic_client.messages.create(model=SONNET, max_tokens=10, system="Be terse.", messages=HELLO)
    assert fake_provider.last_request.body["system"] == "Be terse."
    blocks = [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]
    anthropic_client.messages.create(model=SONNET, max_tokens=10, system=blocks, messages=HELLO)
    assert fake_provider.last_request.body["system"] == blocks


@pytest.mark.parametrize("model", [SONNET, TRANSLATED])
def test_tool_use_and_tool_result_round_trip(anthropic_client, fake_provider, model):
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    message = anthropic_client.messages.create(model=model, max_tokens=100, tools=[WEATHER_TOOL], messages=asked)
    call = message.content[-1]
    assert message.stop_reason == "tool_use" and call.type == "tool_use"
    assert (call.name, call.input) == ("get_weather", {"location": "Paris"})
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "18C"}
    history = [*asked, {"role": "assistant", "content": [block.model_dump() for block in message.content]},
               {"role": "user", "content": [result]}]  # fmt: skip
    answer = anthropic_client.messages.create(model=model, max_tokens=100, tools=[WEATHER_TOOL], messages=history)
    assert answer.content[0].text == "Tool said: 18C"


def test_streamed_tool_use(anthropic_client):
    with anthropic_client.messages.stream(model=SONNET, max_tokens=100, tools=[WEATHER_TOOL], messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == {"location": "Paris"}


def test_cap_applies_to_max_tokens(anthropic_client, fake_provider):
    anthropic_client.messages.create(model=CAPPED_CLAUDE, max_tokens=1000, messages=HELLO)
    assert fake_provider.last_request.body["max_tokens"] == 50
    anthropic_client.messages.create(model=CAPPED_CLAUDE, max_tokens=10, messages=HELLO)
    assert fake_provider.last_request.body["max_tokens"] == 10
    anthropic_client.messages.create(model="capped", max_tokens=1000, messages=HELLO)  # translated: chat completions
    assert fake_provider.last_request.path == "/v1/chat/completions"
    assert fake_provider.last_request.body["max_tokens"] == 5


def test_tokens_per_minute_reserve_the_prompt_and_the_capped_max_tokens(gateway_url, claude_models):
    from keys.services import create_api_key

    wait_for_minute_window()
    key = create_api_key(name="tpm-1000", tpm_limit=1000).plaintext
    response = post(gateway_url, key, {"model": CAPPED_CLAUDE, "max_tokens": 100_000, "messages": HELLO})
    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining-tokens"] == str(1000 - 50 - 5)  # cap 50; "hello" 1 + 4 overhead


def test_alias_is_resolved(anthropic_client, fake_provider):
    message = anthropic_client.messages.create(model="sonnet", max_tokens=10, messages=HELLO)
    assert fake_provider.last_request.body["model"] == SONNET and message.content[0].text


# Errors: Anthropic-shaped, the SDK's own exception classes.


def test_model_not_allowed(anthropic_client, fake_provider):
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client.messages.create(model="claude-opus-9", max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert caught.value.body["error"]["message"].startswith("model: The model 'claude-opus-9'")
    assert fake_provider.requests == []


def test_key_allowlist(gateway_url, claude_models):
    from keys.services import create_api_key

    chat_only = client_for(gateway_url, create_api_key(name="chat-only", models=["gpt-4o-mini"]).plaintext)
    with pytest.raises(anthropic.BadRequestError) as caught:
        chat_only.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    assert "may not use" in caught.value.body["error"]["message"]
    assert chat_only.messages.create(model=TRANSLATED, max_tokens=10, messages=HELLO).content[0].text
    claude_only = client_for(gateway_url, create_api_key(name="claude-only", models=["sonnet"]).plaintext)
    assert claude_only.messages.create(model=SONNET, max_tokens=10, messages=HELLO).content[0].text


def test_key_rpm_limit_is_a_rate_limit_error(gateway_url, claude_models):
    from keys.services import create_api_key

    wait_for_minute_window()
    limited = client_for(gateway_url, create_api_key(name="rpm-2", rpm_limit=2).plaintext)
    for _ in range(2):
        limited.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as caught:
        limited.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    headers = caught.value.response.headers
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "Retry-After" in headers and headers["x-ratelimit-limit-requests"] == "2"


def test_bad_key_is_an_authentication_error(gateway_url, claude_models):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client_for(gateway_url, "llmp_" + "x" * 40).messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == "authentication_error"
    missing = httpx.post(f"{gateway_url}/v1/messages", json={"model": SONNET, "max_tokens": 1, "messages": HELLO})
    assert "x-api-key" in assert_anthropic_error(missing, 401, "authentication_error")


@pytest.mark.parametrize(
    ("status", "error_class", "kind"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.ServiceUnavailableError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (401, anthropic.InternalServerError, "api_error"),  # the provider refused the gateway's own key: 502
    ],
)
def test_provider_errors_raise_the_sdk_class(anthropic_client, fake_provider, status, error_class, kind):
    fake_provider.fail_next("status", status=status, headers={"retry-after": "7"})
    with pytest.raises(error_class) as caught:
        anthropic_client.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == kind
    if status == 429:
        assert caught.value.response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("model", [SONNET, TRANSLATED])
def test_stream_failure_after_the_first_event_is_an_error_event(anthropic_client, fake_provider, model):
    fake_provider.fail_next("stream_error")
    with (
        pytest.raises(anthropic.APIStatusError) as caught,  # the HTTP status was already 200
        anthropic_client.messages.stream(model=model, max_tokens=100, messages=HELLO) as stream,
    ):
        stream.until_done()
    error = caught.value.body["error"]
    assert STREAM_ERROR_MESSAGE in error["message"] and "litellm" not in error["message"].lower()
    assert error["type"] == ("overloaded_error" if model == SONNET else "api_error")
    [failed] = rows_once_logged(1)
    status = 503 if model == SONNET else 502
    assert (failed.endpoint, failed.status, failed.end_reason) == ("messages", status, "provider_error")


def test_cut_stream_ends_with_an_error_event_and_estimated_usage(anthropic_client, fake_provider):
    fake_provider.fail_next("cut", after=2)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        anthropic_client.messages.stream(model=SONNET, max_tokens=100, messages=HELLO) as stream,
    ):
        stream.until_done()
    assert caught.value.body["error"]["type"] == "api_error"
    [cut] = rows_once_logged(1)
    assert (cut.status, cut.end_reason, cut.usage_estimated) == (502, "provider_error", True)
    assert cut.prompt_tokens > 0  # the prompt is billed, and what was delivered (the cut may beat the deltas)


@pytest.mark.parametrize("model", [SONNET, TRANSLATED])
def test_client_disconnect_closes_the_provider_stream(gateway_url, api_key, claude_models, fake_provider, model):
    fake_provider.chunk_delay = 0.2
    body = {"model": model, "max_tokens": 1000, "messages": [{"role": "user", "content": "REPEAT 100"}], "stream": True}
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", f"{gateway_url}/v1/messages", json=body, headers={"x-api-key": api_key}) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_bytes():
            break  # first event seen: hang up
    deadline = time.monotonic() + 3
    while fake_provider.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_provider.disconnects == 1
    [row] = rows_once_logged(1)
    assert (row.endpoint, row.end_reason) == ("messages", "client_disconnected")


def test_use_litellm_does_not_take_anthropic_models_off_the_native_relay(anthropic_client, fake_provider):
    from routing.models import Deployment

    deployment = Deployment.objects.get(model__name=SONNET)
    deployment.use_litellm = True
    deployment.save()
    with anthropic_client.messages.stream(model=SONNET, max_tokens=10, messages=HELLO) as stream:
        assert stream.get_final_message().content[0].text
    # LiteLLM would send its own fixed anthropic-version; the relay sends the caller's
    assert (
        fake_provider.last_request.headers["anthropic-version"] == anthropic_client.default_headers["anthropic-version"]
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (body_with(model=None), "model"),
        (body_with(max_tokens=None), "max_tokens"),
        (body_with(max_tokens=0), "max_tokens"),
        (body_with(max_tokens="10"), "max_tokens"),
        (body_with(messages=None), "messages"),
        (body_with(messages=[]), "messages"),
        (body_with(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
        (body_with(messages=[{"role": "user"}]), "messages.0.content"),
        (user_says(7), "messages.0.content"),
        (user_says(""), "messages.0.content"),
        (user_says([{"type": "text"}]), "messages.0.content.0.text"),
        (user_says([{"text": "x"}]), "messages.0.content.0.type"),
        (user_says([{"type": "tool_use", "id": "t", "name": "n", "input": "x"}]), "messages.0.content.0.input"),
        (body_with(system=3), "system"),
        (body_with(stream="yes"), "stream"),
        (body_with(temperature=1.5), "temperature"),
        (body_with(top_p=-0.1), "top_p"),
        (body_with(top_k=-1), "top_k"),
        (body_with(stop_sequences="x"), "stop_sequences"),
        (body_with(tools=[{"name": "t"}]), "tools.0.input_schema"),
        (body_with(tool_choice={"type": "tool"}), "tool_choice.name"),
        (body_with(metadata={"user_id": 1}), "metadata.user_id"),
        (body_with(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (body_with(api_base="http://evil.example"), "api_base"),
        (body_with(mock_response="hi"), "mock_response"),
        (body_with(model=TRANSLATED, unknown_field=1), "unknown_field"),
    ],
)
def test_bad_input_is_an_anthropic_shaped_400_naming_the_field(gateway_url, api_key, claude_models, fake_provider,
                                                              body, param):  # fmt: skip
    message = assert_anthropic_error(post(gateway_url, api_key, body), 400, "invalid_request_error")
    assert message.startswith(f"{param}: "), message
    assert fake_provider.requests == []


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"model": "' + b"\xff" + b'"}', b"[" * 5000])
def test_unreadable_bodies_are_anthropic_shaped_400s(gateway_url, api_key, claude_models, body):
    response = httpx.post(f"{gateway_url}/v1/messages", content=body, headers={"x-api-key": api_key})
    assert_anthropic_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize("value", [b"caf\xe9", "☃".encode(), b"x" * 4000])
def test_odd_anthropic_headers_are_never_a_500(gateway_url, api_key, claude_models, value):
    for name in (b"anthropic-beta", b"anthropic-version"):
        headers = [(b"x-api-key", api_key.encode()), (b"content-type", b"application/json"), (name, value)]
        response = httpx.post(f"{gateway_url}/v1/messages", content=orjson.dumps(body_with()), headers=headers)
        assert response.status_code in (200, 400), response.text


def test_oversized_body_and_headers_are_anthropic_shaped(gateway_url, api_key, claude_models):
    from django.conf import settings

    huge = body_with(messages=[{"role": "user", "content": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}])
    assert_anthropic_error(post(gateway_url, api_key, huge), 413, "request_too_large")
    padded = post(gateway_url, api_key, body_with(), **{"x-padding": "p" * settings.LLMPROXY_MAX_HEADER_BYTES})
    assert_anthropic_error(padded, 431, "invalid_request_error")
    assert logged_rows()[0].endpoint == "messages"


def test_wrong_method_is_an_anthropic_shaped_405(gateway_url, api_key):
    response = httpx.get(f"{gateway_url}/v1/messages", headers={"x-api-key": api_key})
    assert_anthropic_error(response, 405, "invalid_request_error")
    assert response.headers["Allow"] == "POST"


def test_unknown_fields_reach_anthropic_which_judges_them(anthropic_client):
    with pytest.raises(anthropic.BadRequestError) as caught:  # the fake refuses fields Anthropic does not document
        anthropic_client.messages.create(model=SONNET, max_tokens=10, messages=HELLO, extra_body={"vendor_flag": 1})
    assert "vendor_flag: Extra inputs are not permitted" in caught.value.body["error"]["message"]
    anthropic_client.messages.create(
        model=SONNET, max_tokens=10, messages=HELLO, service_tier="auto"
    )  # documented: sent


# Usage rows.


def test_usage_rows_count_cache_tokens_and_cost(anthropic_client):
    anthropic_client.messages.create(model=SONNET, max_tokens=100, messages=[{"role": "user", "content": "CACHE " * 8}])
    with anthropic_client.messages.stream(
        model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "a b c d"}]
    ) as s:
        s.until_done()
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.create(model="nope", max_tokens=10, messages=HELLO)
    cached, streamed, refused = rows_once_logged(3)
    # 8 prompt tokens: 4 read from the cache, 2 written to it, 2 uncached (Anthropic leaves both out of input_tokens)
    assert (cached.endpoint, cached.resolved_model, cached.status, cached.streamed) == ("messages", SONNET, 200, False)
    assert (cached.prompt_tokens, cached.cache_read_tokens, cached.cache_write_tokens) == (8, 4, 2)
    completion = cached.completion_tokens
    expected = 2 * PRICES["input"] + 4 * PRICES["read"] + 2 * PRICES["write"] + completion * PRICES["output"]
    assert cached.cost_usd == expected and not cached.usage_estimated
    assert (streamed.endpoint, streamed.requested_model, streamed.streamed) == ("messages", "sonnet", True)
    assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.usage_estimated) == (4, 7, False)
    assert streamed.cost_usd == 4 * PRICES["input"] + 7 * PRICES["output"]  # "Hello! You said: a b c d"
    assert (refused.endpoint, refused.status, refused.end_reason) == ("messages", 400, "rejected")
