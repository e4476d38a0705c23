"""The fake provider speaks Anthropic's Messages wire format and keeps its contracts."""

import httpx
import orjson
import pytest

from tests.fake_provider.helpers import CLAUDE_TOOL, HELLO, messages, sse_events


def test_anthropic_json_and_sse(fake_provider):
    system = [{"type": "text", "text": "be brief"}]
    reply = messages(fake_provider, system=system).json()
    assert reply["id"].startswith("msg_fake_") and reply["type"] == "message" and reply["model"] == "claude-x"
    assert reply["content"] == [{"type": "text", "text": "Hello! You said: hi there"}]
    assert (reply["stop_reason"], reply["stop_sequence"]) == ("end_turn", None)
    assert reply["usage"] == {"input_tokens": 4, "output_tokens": 5, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 0}  # fmt: skip
    assert fake_provider.last_request.path == "/v1/messages"
    capped = messages(fake_provider, max_tokens=2).json()
    assert (capped["content"][0]["text"], capped["stop_reason"]) == ("Hello! You", "max_tokens")
    stopped = messages(fake_provider, stop_sequences=["said"]).json()
    assert (stopped["content"][0]["text"], stopped["stop_reason"], stopped["stop_sequence"]) == (
        "Hello! You ",
        "stop_sequence",
        "said",
    )
    events = sse_events(messages(fake_provider, stream=True))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    zero_cache = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    assert events[0][1]["message"]["usage"] == {"input_tokens": 2, "output_tokens": 1, **zero_cache}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == "Hello! You said: hi there"
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    }


def test_anthropic_tool_use(fake_provider):
    asked = [{"role": "user", "content": "weather?"}]
    reply = messages(fake_provider, messages=asked, tools=[CLAUDE_TOOL]).json()
    assert reply["content"] == [
        {"type": "tool_use", "id": "toolu_fake_1", "name": "get_weather", "input": {"location": "Paris"}}
    ]
    assert reply["stop_reason"] == "tool_use"
    events = sse_events(messages(fake_provider, messages=asked, tools=[CLAUDE_TOOL], stream=True))
    assert events[1][1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_fake_1",
        "name": "get_weather",
        "input": {},
    }
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert len(deltas) >= 2 and {delta["type"] for delta in deltas} == {"input_json_delta"}
    assert orjson.loads("".join(delta["partial_json"] for delta in deltas)) == {"location": "Paris"}
    result = {"type": "tool_result", "tool_use_id": "toolu_fake_1", "content": [{"type": "text", "text": "sunny"}]}
    answered = [*asked, {"role": "assistant", "content": reply["content"]}, {"role": "user", "content": [result]}]
    final = messages(fake_provider, messages=answered, tools=[CLAUDE_TOOL]).json()
    assert (final["content"][0]["text"], final["stop_reason"]) == ("Tool said: sunny", "end_turn")


@pytest.mark.parametrize("field", ["extra_body", "top_logprobs", "chat_template_kwargs"])
def test_anthropic_refuses_unknown_top_level_fields_with_anthropics_body(fake_provider, field):
    response = messages(fake_provider, **{field: {}})
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": f"{field}: Extra inputs are not permitted"},
    }


def test_anthropic_takes_its_own_fields_and_requires_max_tokens(fake_provider):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    assert messages(fake_provider, top_k=5, thinking=thinking, metadata={"user_id": "u"}).status_code == 200
    body = {"model": "claude-x", "messages": HELLO}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    response = httpx.post(f"{fake_provider.anthropic_base}/v1/messages", json=body, headers=headers, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    body = {"model": "claude-x", "max_tokens": 10}
    response = httpx.post(f"{fake_provider.anthropic_base}/v1/messages", json=body, headers=headers, timeout=10)
    assert response.json()["error"]["message"] == "messages: Field required"


def test_anthropic_requires_the_api_key_and_version_headers(fake_provider):
    missing_key = messages(fake_provider, headers={"anthropic-version": "2023-06-01"})
    assert missing_key.status_code == 401
    assert missing_key.json() == {"type": "error", "error": {"type": "authentication_error",
                                                             "message": "x-api-key header is required"}}  # fmt: skip
    missing_version = messages(fake_provider, headers={"x-api-key": "k"})
    assert missing_version.status_code == 400
    refused = {"type": "invalid_request_error", "message": "anthropic-version: header is required"}
    assert missing_version.json() == {"type": "error", "error": refused}
    bearer = messages(fake_provider, headers={"authorization": "Bearer k", "anthropic-version": "2023-06-01"})
    assert bearer.status_code == 200  # the anthropic SDK 2.x sends its key this way


def test_anthropic_refuses_a_model_it_does_not_serve(fake_provider):
    response = messages(fake_provider, model="gpt-4o")
    assert response.status_code == 404
    assert response.json() == {"type": "error", "error": {"type": "not_found_error", "message": "model: gpt-4o"}}
    assert messages(fake_provider, model="fake-claude").status_code == 200


def test_anthropic_reports_cache_reads_and_writes_outside_input_tokens(fake_provider):
    said = [{"role": "user", "content": "CACHE one two three four five six seven"}]
    usage = messages(fake_provider, messages=said).json()["usage"]
    assert usage == {"input_tokens": 2, "output_tokens": 11, "cache_read_input_tokens": 4,
                     "cache_creation_input_tokens": 2}  # fmt: skip
    started = sse_events(messages(fake_provider, messages=said, stream=True))[0][1]["message"]["usage"]
    assert (started["input_tokens"], started["cache_read_input_tokens"], started["cache_creation_input_tokens"]) == (
        2, 4, 2,
    )  # fmt: skip


def test_the_anthropic_sdk_reads_messages_streams_tools_and_errors(fake_provider):
    import anthropic

    client = anthropic.Anthropic(base_url=fake_provider.anthropic_base, api_key="sk-ant-test", max_retries=0)
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HELLO, system="be brief",
                                     stop_sequences=["never"])  # fmt: skip
    assert message.content[0].text == "Hello! You said: hi there" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 5)
    sent = fake_provider.last_request
    assert (sent.headers["authorization"], sent.headers["anthropic-version"]) == ("Bearer sk-ant-test", "2026-10-21")
    assert sent.body["system"] == "be brief" and sent.body["stop_sequences"] == ["never"]
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HELLO) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert "content_block_delta" in events and events[-1] == "message_stop"
    assert final.content[0].text == "Hello! You said: hi there" and final.usage.output_tokens == 5
    tool = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HELLO, tools=[CLAUDE_TOOL])
    assert (tool.stop_reason, tool.content[0].type, tool.content[0].input) == (
        "tool_use",
        "tool_use",
        {"location": "Paris"},
    )
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HELLO,
                                tools=[CLAUDE_TOOL]) as stream:  # fmt: skip
        assert stream.get_final_message().content[0].input == {"location": "Paris"}
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="gpt-4o", max_tokens=10, messages=HELLO)
    assert unknown.value.body["error"]["type"] == "not_found_error"
    fake_provider.fail_next("stream_error")
    with pytest.raises(anthropic.APIStatusError) as failed:  # noqa: SIM117
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HELLO) as stream:
            list(stream)
    assert "overloaded_error" in str(failed.value.body)
