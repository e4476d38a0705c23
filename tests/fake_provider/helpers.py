"""Small HTTP helpers shared by the fake provider's tests (one test module per wire format)."""

import time

import httpx
import orjson

from tests.support.fake_provider import FakeProvider

HELLO = [{"role": "user", "content": "hi there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
CLAUDE_TOOL = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def chat(provider: FakeProvider, timeout: float = 10, **body) -> httpx.Response:
    body = {"model": "fake-model", "messages": HELLO, **body}
    headers = {"Authorization": "Bearer sk-test"}
    return httpx.post(f"{provider.openai_base}/chat/completions", json=body, headers=headers, timeout=timeout)


def messages(provider: FakeProvider, headers: dict | None = None, **body) -> httpx.Response:
    body = {"model": "claude-x", "max_tokens": 100, "messages": HELLO, **body}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"} if headers is None else headers
    return httpx.post(f"{provider.anthropic_base}/v1/messages", json=body, headers=headers, timeout=10)


def post(provider: FakeProvider, path: str, body: dict, timeout: float = 10) -> httpx.Response:
    headers = {"Authorization": "Bearer sk-test"}
    return httpx.post(f"{provider.openai_base}{path}", json=body, headers=headers, timeout=timeout)


def sse_data(response: httpx.Response) -> list[str]:
    return [block.split("data: ", 1)[1] for block in response.text.split("\n\n") if "data: " in block]


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    blocks = [block.split("\n") for block in response.text.split("\n\n") if block]
    return [(event.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))) for event, data in blocks]


def wait_for(condition, seconds: float = 3) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()
