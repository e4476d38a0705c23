"""What failover tests need from the fake provider: context-window refusals as each provider words them (the SDKs
and LiteLLM read them as the real ones), persistent faults, and fakes in processes of their own."""

import asyncio
import json
import os

import anthropic
import httpx
import openai
import pytest

from tests.fake_provider.helpers import chat, messages, post, wait_for
from tests.support.fake_control import FakeProviderProcess
from tests.support.fake_wire import SMALL_CONTEXT_WINDOW

TOO_LONG = "x" * (SMALL_CONTEXT_WINDOW * 4 + 1)  # one token over the window (characters / 4, rounded up)
JUST_FITS = "x" * (SMALL_CONTEXT_WINDOW * 4)
OPENAI_TOO_LONG = (
    f"This model's maximum context length is {SMALL_CONTEXT_WINDOW} tokens. However, your messages resulted in "
    f"{SMALL_CONTEXT_WINDOW + 1} tokens. Please reduce the length of the messages."
)
ANTHROPIC_TOO_LONG = f"prompt is too long: {SMALL_CONTEXT_WINDOW + 1} tokens > {SMALL_CONTEXT_WINDOW} maximum"


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_a_prompt_over_a_small_window_is_refused_in_each_wire_format(fake_provider):
    refused = chat(fake_provider, model="fake-model-small-context", messages=user(TOO_LONG))
    assert refused.status_code == 400
    assert refused.json() == {"error": {"message": OPENAI_TOO_LONG, "type": "invalid_request_error",
                                        "param": "messages", "code": "context_length_exceeded"}}  # fmt: skip
    assert refused.text.startswith('{\n    "error": {\n')  # indented, as OpenAI sends its error bodies
    assert chat(fake_provider, model="fake-model-small-context", messages=user(JUST_FITS)).status_code == 200
    assert chat(fake_provider, model="fake-model", messages=user(TOO_LONG)).status_code == 200  # no window

    body = {"model": "fake-model-small-context", "input": TOO_LONG}
    assert post(fake_provider, "/responses", body).json()["error"] == {
        "message": "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "type": "invalid_request_error", "param": "input", "code": "context_length_exceeded",
    }  # fmt: skip
    fits = post(fake_provider, "/responses", {**body, "input": JUST_FITS[:-40], "instructions": "y" * 40})
    assert fits.status_code == 200

    too_long = messages(fake_provider, model="claude-x-small-context", system="s" * 4, messages=user(JUST_FITS))
    assert (too_long.status_code, too_long.json()) == (400, {
        "type": "error", "error": {"type": "invalid_request_error", "message": ANTHROPIC_TOO_LONG},
    })  # fmt: skip
    assert messages(fake_provider, model="claude-x-small-context", messages=user(JUST_FITS)).status_code == 200


def test_the_sdks_see_context_window_refusals_as_bad_requests(fake_provider):
    client = openai.OpenAI(base_url=fake_provider.openai_base, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="fake-model-small-context", messages=user(TOO_LONG))
    assert (refused.value.code, refused.value.param) == ("context_length_exceeded", "messages")
    claude = anthropic.Anthropic(base_url=fake_provider.anthropic_base, api_key="sk-test", max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        claude.messages.create(model="claude-x-small-context", max_tokens=10, messages=user(TOO_LONG))


def test_litellm_maps_each_context_window_refusal_to_context_window_exceeded(fake_provider):
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    import litellm

    async def refusals() -> list[type]:
        calls = [
            ("openai/fake-model-small-context", fake_provider.openai_base, False),
            ("openai/fake-model-small-context", fake_provider.openai_base, True),
            ("anthropic/claude-x-small-context", fake_provider.anthropic_base, False),
            ("anthropic/claude-x-small-context", fake_provider.anthropic_base, True),
        ]
        raised = []
        for model, base, stream in calls:
            with pytest.raises(litellm.ContextWindowExceededError) as caught:
                await litellm.acompletion(model=model, api_base=base, api_key="x", messages=user(TOO_LONG),
                                          max_retries=0, stream=stream)  # fmt: skip
            raised.append(caught.type)
        with pytest.raises(litellm.ContextWindowExceededError) as caught:
            await litellm.aresponses(model="openai/fake-model-small-context", api_base=fake_provider.openai_base,
                                     api_key="x", input=TOO_LONG)  # fmt: skip
        return [*raised, caught.type]

    assert asyncio.run(refusals()) == [litellm.ContextWindowExceededError] * 5
    assert len(fake_provider.requests) == 5


def test_a_rate_limit_carries_retry_after_in_each_wire_format(fake_provider):
    fake_provider.fail_next("status", status=429, headers={"retry-after": "7"})
    fake_provider.fail_next("status", status=429, headers={"retry-after": "3"})
    client = openai.OpenAI(base_url=fake_provider.openai_base, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="fake-model", messages=user("hi"))
    assert (limited.value.code, limited.value.type) == ("rate_limit_exceeded", "requests")
    assert limited.value.response.headers["retry-after"] == "7"
    claude = anthropic.Anthropic(base_url=fake_provider.anthropic_base, api_key="sk-test", max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as limited_claude:
        claude.messages.create(model="claude-x", max_tokens=10, messages=user("hi"))
    assert limited_claude.value.body == {"type": "error", "error": {"type": "rate_limit_error",
                                                                   "message": "fake provider error 429"}}  # fmt: skip
    assert limited_claude.value.response.headers["retry-after"] == "3"


def test_fail_always_fails_every_request_after_the_queued_faults_until_healed(fake_provider):
    fake_provider.fail_always("status", status=503)
    fake_provider.fail_next("status", status=429)
    assert [chat(fake_provider).status_code for _ in range(3)] == [429, 503, 503]
    assert messages(fake_provider).json()["error"]["type"] == "api_error"  # Anthropic's shape for a 503
    assert httpx.get(f"{fake_provider.url}/elsewhere", timeout=5).status_code == 404  # unknown routes: untouched
    fake_provider.heal()
    assert chat(fake_provider).status_code == 200
    fake_provider.fail_always("hang")
    with pytest.raises(httpx.ReadTimeout):
        chat(fake_provider, timeout=0.3)
    fake_provider.reset()  # reset heals too
    assert chat(fake_provider).status_code == 200
    with pytest.raises(ValueError):
        fake_provider.fail_always("explode")


def test_fakes_in_their_own_processes_record_separately_and_obey_the_control_routes():
    with FakeProviderProcess() as first, FakeProviderProcess() as second:
        assert first.port != second.port
        second.fail_always("status", status=500)
        second.fail_next("status", status=429, headers={"retry-after": "2"})
        assert chat(first).json()["choices"][0]["message"]["content"] == "Hello! You said: hi there"
        limited = chat(second)
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
        assert [chat(second).status_code, chat(second).status_code] == [500, 500]
        second.heal()
        assert chat(second, model="fake-model-small-context", messages=user(TOO_LONG)).status_code == 400
        assert [len(first.requests), len(second.requests)] == [1, 4]  # control requests are not recorded
        assert first.last_request.body["messages"] == [{"role": "user", "content": "hi there"}]
        assert first.last_request.headers["authorization"] == "Bearer sk-test"

        second.stream_chunks = 2
        streamed = chat(second, messages=user("REPEAT 6"), stream=True)
        deltas = [json.loads(line.removeprefix("data: ")) for line in streamed.text.split("\n\n") if "content" in line]
        assert [delta["choices"][0]["delta"]["content"] for delta in deltas] == ["", "w1 w2 w3 ", "w4 w5 w6"]
        second.fail_next("hang")
        with pytest.raises(httpx.ReadTimeout):
            chat(second, timeout=0.3)
        assert wait_for(lambda: second.disconnects == 1)
        second.reset()
        assert (second.requests, second.disconnects, second.stream_chunks) == ([], 0, None)
        with pytest.raises(ValueError, match="unknown fault"):
            second.fail_next("explode")
        assert httpx.get(f"{second.url}/_fake/nothing", timeout=5).status_code == 404
    assert first.process is not None and first.process.returncode == 0
