"""The OpenAI SDK against a live gateway, the fake provider recording what it received."""

import openai
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]


def test_answer_and_usage(openai_client, fake_provider):
    completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello! You said: hi there"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        2,
        5,
        7,
    )
    sent = fake_provider.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "fake-model"
    assert sent.body["messages"] == HELLO


def test_streaming_text_is_identical_to_the_non_streaming_text(openai_client):
    whole = openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices[0].message.content
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    assert len(chunks) > 3
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == whole
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_include_usage_gives_a_final_usage_chunk(openai_client, fake_provider):
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 5)
    assert fake_provider.last_request.body["stream_options"] == {"include_usage": True}


def test_alias_is_rewritten_before_the_provider_sees_it(openai_client, fake_provider):
    completion = openai_client.chat.completions.create(model="fast", messages=HELLO)
    assert completion.choices[0].message.content == "Hello! You said: hi there"
    assert fake_provider.last_request.body["model"] == "fake-model"


@pytest.mark.parametrize("model", ["no-such-model", "disabled-model"])
def test_unknown_or_disabled_model_is_a_400_naming_model(openai_client, fake_provider, model):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model, messages=HELLO)
    error = caught.value.body
    assert caught.value.status_code == 400
    assert error["param"] == "model" and model in error["message"]
    assert fake_provider.requests == []


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"max_tokens": 100}, {"max_tokens": 5}),
        ({"max_tokens": 3}, {"max_tokens": 3}),
        ({}, {"max_tokens": 5}),
        ({"max_completion_tokens": 100}, {"max_completion_tokens": 5}),
    ],
)
def test_token_cap_lowers_keeps_or_adds(openai_client, fake_provider, sent, expected):
    completion = openai_client.chat.completions.create(
        model="capped", messages=[{"role": "user", "content": "REPEAT 50"}], **sent
    )
    body = fake_provider.last_request.body
    for name, value in expected.items():
        assert body[name] == value
    assert len(completion.choices[0].message.content.split()) == min(50, *expected.values())


def test_pass_through_fields_reach_the_provider(openai_client, fake_provider):
    completion = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        user="user-42",
        stop=["said"],
        seed=1234,
        n=2,
        response_format={"type": "json_object"},
        temperature=0.3,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
    )
    body = fake_provider.last_request.body
    assert body["user"] == "user-42"
    assert body["stop"] == ["said"]
    assert body["seed"] == 1234
    assert body["n"] == 2
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["top_p"], body["presence_penalty"], body["frequency_penalty"]) == (
        0.3, 0.9, 0.5, -0.5,
    )  # fmt: skip
    assert [choice.index for choice in completion.choices] == [0, 1]
    assert completion.choices[0].message.content == "Hello! You "


def test_unknown_fields_reach_the_provider_inside_the_body(openai_client, fake_provider):
    openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, extra_body={"vendor_option": {"depth": 3}, "top_k": 5}
    )
    body = fake_provider.last_request.body
    assert body["vendor_option"] == {"depth": 3}
    assert body["top_k"] == 5


@pytest.mark.parametrize("field", ["api_base", "api_key", "base_url", "custom_llm_provider", "mock_response"])
def test_litellm_control_fields_are_refused(openai_client, fake_provider, field):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_body={field: "http://evil"})
    assert caught.value.body["param"] == field
    assert fake_provider.requests == []


def test_extra_headers_in_the_body_are_refused(openai_client, fake_provider):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, extra_body={"extra_headers": {"x-api-key": "steal"}}
        )
    assert caught.value.body["param"] == "extra_headers"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def test_tool_calls_both_ways(openai_client, fake_provider):
    first = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_fake_1",
        "get_weather",
        '{"location": "Paris"}',
    )
    assert fake_provider.last_request.body["tools"] == [WEATHER_TOOL]
    assert fake_provider.last_request.body["tool_choice"] == "auto"
    second = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].message.content == "Tool said: sunny"
    sent = fake_provider.last_request.body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_fake_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_fake_1", "content": "sunny"}


def test_streamed_tool_call_deltas_keep_their_index(openai_client):
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL], stream=True
        )
    )
    deltas = [tc for chunk in chunks if chunk.choices for tc in (chunk.choices[0].delta.tool_calls or [])]
    assert len(deltas) >= 3
    assert {delta.index for delta in deltas} == {0}
    assert deltas[0].function.name == "get_weather"
    assert "".join(delta.function.arguments or "" for delta in deltas) == '{"location": "Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_anthropic_routed_model_answers_in_openai_shape(openai_client, fake_provider):
    completion = openai_client.chat.completions.create(
        model="claude-3-5-sonnet-20241022",
        messages=[{"role": "system", "content": "be brief"}, *HELLO],
        user="user-7",
        stop=["never-said"],
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello! You said: hi there"
    assert completion.usage.completion_tokens == 5
    sent = fake_provider.last_request
    assert sent.path == "/v1/messages"
    assert sent.body["model"] == "claude-3-5-sonnet-20241022"
    assert sent.body["max_tokens"] == 50  # the model's cap, added because the request sent none
    assert sent.body["stop_sequences"] == ["never-said"]


def test_anthropic_routed_model_streams_in_openai_shape(openai_client, fake_provider):
    chunks = list(
        openai_client.chat.completions.create(
            model="claude-3-5-sonnet-20241022", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello! You said: hi there"
    assert fake_provider.last_request.body["stream"] is True
    usage_chunks = [chunk for chunk in chunks if chunk.usage]
    assert usage_chunks and usage_chunks[-1].usage.completion_tokens == 5


def test_provider_key_comes_from_the_named_variable_and_never_leaks(
    openai_client, fake_provider, monkeypatch, transactional_db
):
    from routing.models import Deployment

    monkeypatch.setenv("LLMPROXY_PROVIDER_KEY_TEAM", "sk-team-secret-value-0001")
    deployment = Deployment.objects.get(model__name="gpt-4o-mini")
    deployment.api_key_env = "LLMPROXY_PROVIDER_KEY_TEAM"
    deployment.save()
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert fake_provider.last_request.headers["authorization"] == "Bearer sk-team-secret-value-0001"
    fake_provider.fail_next("status", status=400, body={"error": {"message": "bad key sk-team-secret-value-0001"}})
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert "sk-team-secret-value-0001" not in str(caught.value.body)


def test_model_with_an_api_base_never_gets_a_default_provider_key(openai_client, fake_provider, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-default-openai-key-must-not-leak")
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert "sk-default-openai-key-must-not-leak" not in str(fake_provider.last_request.headers)


def test_missing_provider_key_variable_is_a_502_naming_no_secret(openai_client, fake_provider, transactional_db):
    from routing.models import Deployment

    Deployment.objects.filter(model__name="gpt-4o-mini").update(api_key_env="LLMPROXY_PROVIDER_KEY_UNSET")
    Deployment.objects.get(model__name="gpt-4o-mini").save()
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "provider_not_configured"
    assert fake_provider.requests == []
