"""The translated path (api/translated.py) answers exactly as litellm.acompletion does, and sends the same body.

Each request goes through the live gateway twice, once per path (LLMPROXY_TRANSLATED_PATH on and off in the
server's settings): the caller's JSON or SSE chunks (ids and `created` aside), the status and headers of an error,
the usage row, and what the fake Anthropic provider received must be the same. The provider sees which path called
it: LiteLLM's own client announces itself in `User-Agent`, the gateway's pooled session sends none.
"""

import re

import httpx
import pytest
from django.conf import settings

from tests.support.request_log import rows_once_logged

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-3-5-sonnet-20241022"
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
TOOL_TURN = [
    {"role": "user", "content": "weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "toolu_fake_1", "type": "function",
                                                           "function": {"name": "get_weather",
                                                                        "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "toolu_fake_1", "content": "sunny, 21 C"},
]  # fmt: skip
REQUESTS = {
    "plain": {"messages": [{"role": "user", "content": "hi there"}]},
    "system": {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
               "temperature": 0.2, "top_p": 0.9, "user": "user-42"},
    "developer": {"messages": [{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "hi"}]},
    "stop": {"messages": [{"role": "user", "content": "hi there friend"}], "stop": ["friend"], "max_tokens": 30},
    "cut_by_max_tokens": {"messages": [{"role": "user", "content": "REPEAT 40"}], "max_tokens": 3},
    "tools": {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER_TOOL]},
    "tool_choice": {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER_TOOL],
                    "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    "tool_result": {"messages": TOOL_TURN, "tools": [WEATHER_TOOL]},
    "cached": {"messages": [{"role": "user", "content": "CACHE " + "word " * 40}]},
    "parts": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                         {"type": "text", "text": "there"}]}]},
}  # fmt: skip
PROVIDER_HEADERS = ("x-api-key", "authorization", "anthropic-version", "anthropic-beta", "content-type")


def normalised(text: str) -> str:
    text = re.sub(r'"id":"(chatcmpl|msg)[^"]*"', '"id":"…"', text)
    return re.sub(r'"created":\d+', '"created":0', text)


def post(gateway_url: str, api_key: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway_url}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {api_key}"}, timeout=30)  # fmt: skip


def both_paths(gateway_url: str, api_key: str, fake_provider, body: dict, *, fault: dict | None = None,
               model: str = MODEL) -> list:  # fmt: skip
    """(status, headers that matter, normalised body, what the provider received) on each path."""
    seen = []
    from api.gateway import gateway

    for translated in (True, False):
        settings.LLMPROXY_TRANSLATED_PATH = translated
        gateway.health.reset()  # a 429 or 5xx on the first path cools the deployment down
        fake_provider.reset()
        if fault:
            fake_provider.fail_next(**fault)
        response = post(gateway_url, api_key, {"model": model, **body})
        received = fake_provider.last_request
        sent_by_litellm = received.headers.get("user-agent", "").startswith("litellm")
        assert sent_by_litellm != translated, "the request did not take the path under test"
        seen.append((
            response.status_code,
            {name: response.headers.get(name) for name in ("content-type", "retry-after")},
            normalised(response.text),
            received.path,
            received.body,
            {name: received.headers.get(name) for name in PROVIDER_HEADERS},
        ))  # fmt: skip
    return seen


@pytest.fixture
def both(gateway_url, api_key, policy, fake_provider):
    chosen = settings.LLMPROXY_TRANSLATED_PATH  # the suite's run may have switched it off
    yield lambda body, **options: both_paths(gateway_url, api_key, fake_provider, body, **options)
    settings.LLMPROXY_TRANSLATED_PATH = chosen


@pytest.fixture(autouse=True)
def relay_on():
    if not settings.LLMPROXY_DIRECT_RELAY:
        pytest.skip("the translated path is off with the direct relay (the suite's LiteLLM run)")


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_an_answer_is_the_same_on_both_paths(both, name):
    translated, through_litellm = both(REQUESTS[name])
    assert translated[0] == 200, translated
    assert translated == through_litellm


@pytest.mark.parametrize("name", sorted(REQUESTS))
@pytest.mark.parametrize("include_usage", [True, False])
def test_a_stream_is_the_same_on_both_paths(both, name, include_usage):
    body = {**REQUESTS[name], "stream": True, "stream_options": {"include_usage": include_usage}}
    translated, through_litellm = both(body)
    assert translated[0] == 200 and translated[2].endswith("data: [DONE]\n\n"), translated
    assert translated == through_litellm


def test_usage_rows_with_cached_tokens_are_the_same_on_both_paths(both):
    for stream in (False, True):
        both({**REQUESTS["cached"], "stream": stream})
    rows = rows_once_logged(4)
    fields = [(row.streamed, row.status, row.prompt_tokens, row.completion_tokens, row.cache_read_tokens,
               row.cache_write_tokens, row.cost_usd) for row in rows]  # fmt: skip
    assert len(fields) == 4 and fields[0] == fields[1] and fields[2] == fields[3], fields
    assert all(row.cache_read_tokens and row.cache_write_tokens for row in rows)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fault", [
    {"kind": "status", "status": 400},
    {"kind": "status", "status": 401},
    {"kind": "status", "status": 403},
    {"kind": "status", "status": 404},
    {"kind": "status", "status": 429, "headers": {"retry-after": "7"}},
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 529},
    {"kind": "stream_error"},
    {"kind": "cut", "after": 1},
], ids=lambda fault: "-".join(str(value) for key, value in fault.items() if key != "headers"))  # fmt: skip
def test_an_error_is_the_same_on_both_paths(both, fault, stream):
    translated, through_litellm = both({**REQUESTS["plain"], "stream": stream}, fault=fault)
    assert translated[0] != 200 or "error" in translated[2], translated
    assert translated == through_litellm


def test_a_prompt_over_the_window_is_the_same_context_window_error(both, fake_provider):
    from routing.services import create_model

    create_model("claude-small-context", litellm_model="anthropic/claude-x-small-context",
                 api_base=fake_provider.anthropic_base)  # fmt: skip
    long_prompt = {"messages": [{"role": "user", "content": "word " * 5000}]}
    translated, through_litellm = both(long_prompt, model="claude-small-context")
    assert translated[0] == 400 and "context_length_exceeded" in translated[2]
    assert translated == through_litellm


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_without_a_cap_gets_the_same_default_max_tokens(both, fake_provider, stream):
    from routing.services import create_model

    create_model("claude-uncapped", litellm_model="anthropic/claude-sonnet-4-5", api_base=fake_provider.anthropic_base)
    translated, through_litellm = both({**REQUESTS["system"], "stream": stream}, model="claude-uncapped")
    assert translated[0] == 200 and translated[4]["max_tokens"] > 1000, translated[4]
    assert translated == through_litellm
