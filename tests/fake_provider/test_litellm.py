"""LiteLLM 1.110.2 talks to every wire format the fake provider serves."""

import asyncio
import os

import orjson
import pytest

from tests.fake_provider.helpers import HELLO


def test_litellm_talks_to_both_wire_formats(fake_provider):
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    import litellm

    async def both() -> list:
        results = []
        for model, base in [
            ("openai/fake-model", fake_provider.openai_base),
            ("anthropic/claude-3-5-sonnet-20241022", fake_provider.anthropic_base),
        ]:
            options = {"model": model, "api_base": base, "api_key": "x", "messages": HELLO, "max_retries": 0}
            whole = await litellm.acompletion(**options)
            stream = await litellm.acompletion(**options, stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
            results.append((whole.choices[0].message.content, whole.usage.completion_tokens, text))
        return results

    assert asyncio.run(both()) == [("Hello! You said: hi there", 5, "Hello! You said: hi there")] * 2
    paths = [request.path for request in fake_provider.requests]
    assert paths == ["/v1/chat/completions"] * 2 + ["/v1/messages"] * 2


# The LiteLLM behaviours /work/notes/litellm_i9.md relies on, checked against the fake (embeddings, the Responses
# bridge, the Anthropic Messages adapter)


def litellm_module():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    import litellm

    return litellm


def test_litellm_embeds_through_the_fake(fake_provider):
    litellm = litellm_module()
    options = {"api_base": fake_provider.openai_base, "api_key": "x", "input": ["hello world", "x"]}
    embedded = asyncio.run(litellm.aembedding(model="openai/text-embedding-3-small", dimensions=4, **options))
    assert embedded.usage.prompt_tokens == 3 and len(embedded.data[0]["embedding"]) == 4
    assert fake_provider.last_request.body == {"model": "text-embedding-3-small", "input": ["hello world", "x"],
                                               "dimensions": 4}  # fmt: skip
    with pytest.raises(litellm.UnsupportedParamsError):  # LiteLLM allows `dimensions` for text-embedding-3* only
        asyncio.run(litellm.aembedding(model="openai/fake-embedding-3-small", dimensions=4, **options))


def test_litellm_bridges_the_responses_api_to_anthropic_messages(fake_provider):
    litellm = litellm_module()
    options = {"model": "anthropic/claude-sonnet-4-5", "api_base": fake_provider.anthropic_base, "api_key": "x"}

    async def plain_and_streamed() -> tuple:
        plain = await litellm.aresponses(input="hi there", instructions="be brief", max_output_tokens=50, **options)
        stream = await litellm.aresponses(input="hi there", max_output_tokens=50, stream=True, **options)
        return plain, [event async for event in stream]

    plain, events = asyncio.run(plain_and_streamed())
    assert type(plain).__name__ == "ResponsesAPIResponse" and plain.output[0].content[0].text == (
        "Hello! You said: hi there"
    )
    assert (plain.usage.input_tokens, plain.usage.output_tokens, plain.usage.total_tokens) == (4, 5, 9)
    sent = fake_provider.requests[0]
    assert (sent.path, sent.body["max_tokens"], sent.body["system"]) == (
        "/v1/messages", 50, [{"type": "text", "text": "be brief"}],
    )  # fmt: skip
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens == 5
    assert orjson.loads(events[4].model_dump_json(exclude_none=True))["type"] == "response.output_text.delta"
    fake_provider.reset()
    with pytest.raises(litellm.APIConnectionError):  # the bridge replays history from LiteLLM proxy's spend logs
        asyncio.run(litellm.aresponses(input="more", max_output_tokens=50, previous_response_id="resp_x", **options))
    assert fake_provider.requests == []


def test_litellm_passes_the_responses_api_through_to_openai(fake_provider):
    litellm = litellm_module()
    options = {"model": "openai/gpt-4o-mini", "api_base": fake_provider.openai_base, "api_key": "x"}
    first = asyncio.run(litellm.aresponses(input="hi there", store=True, max_output_tokens=10, **options))
    sent = {"model": "gpt-4o-mini", "input": "hi there", "store": True, "max_output_tokens": 16}  # raised to 16
    assert fake_provider.last_request.body == sent
    [provider_id] = fake_provider.responses.stored
    assert first.id != provider_id  # LiteLLM wraps the provider's id, and unwraps it on the way back:
    asyncio.run(litellm.aresponses(input="more", previous_response_id=first.id, **options))
    assert fake_provider.last_request.body["previous_response_id"] == provider_id
    with pytest.raises(litellm.BadRequestError) as refused:
        asyncio.run(litellm.aresponses(input="more", previous_response_id="resp_nope", **options))
    assert refused.value.status_code == 400 and "previous_response_not_found" in refused.value.message


def test_litellm_translates_anthropic_messages_to_chat_completions_and_back(fake_provider, monkeypatch):
    litellm = litellm_module()
    monkeypatch.setattr(litellm, "use_chat_completions_url_for_anthropic_messages", True)
    options = {"model": "openai/gpt-4o-mini", "api_base": fake_provider.openai_base, "api_key": "x"}

    async def plain_and_streamed() -> tuple:
        plain = await litellm.anthropic.messages.acreate(max_tokens=50, messages=HELLO, system="be brief", **options)
        stream = await litellm.anthropic.messages.acreate(max_tokens=50, messages=HELLO, stream=True, **options)
        return plain, [chunk async for chunk in stream]

    plain, chunks = asyncio.run(plain_and_streamed())
    assert (plain["type"], plain["content"], plain["stop_reason"]) == (
        "message", [{"type": "text", "text": "Hello! You said: hi there"}], "end_turn",
    )  # fmt: skip
    assert plain["usage"] == {"input_tokens": 4, "output_tokens": 5}
    assert fake_provider.last_request.path == "/v1/chat/completions"
    assert {type(chunk) for chunk in chunks} == {bytes}  # Anthropic SSE frames, ready to forward
    names = [chunk.split(b"\n", 1)[0].removeprefix(b"event: ").decode() for chunk in chunks]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    fake_provider.fail_next("status", status=429)
    with pytest.raises(litellm.RateLimitError):
        asyncio.run(litellm.anthropic.messages.acreate(max_tokens=50, messages=HELLO, max_retries=0, **options))
    assert len(fake_provider.requests) == 3
