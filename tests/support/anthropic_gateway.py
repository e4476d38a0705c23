"""Helpers for the Messages endpoint's tests (tests/e2e/test_messages*.py): the official `anthropic` SDK pointed at
the live gateway, request bodies, and the Anthropic error shape."""

from decimal import Decimal

import anthropic
import httpx

SONNET = "claude-sonnet-4-5"  # priced in LiteLLM's cost map, per token:
PRICES = {"input": Decimal("3e-6"), "output": Decimal("15e-6"), "read": Decimal("3e-7"), "write": Decimal("3.75e-6")}
CAPPED_CLAUDE = "claude-3-5-sonnet-20241022"  # the shared policy's Anthropic model, capped at 50 tokens
TRANSLATED = "gpt-4o-mini"  # openai/fake-model on the fake's OpenAI side
PROVIDER_KEY = "sk-ant-provider-secret-123"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
HELLO = [{"role": "user", "content": "hello"}]


def client_for(gateway_url: str, key: str | None = None, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway_url, api_key=key, max_retries=0, timeout=20, **options)


def post(gateway_url: str, key: str, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway_url}/v1/messages", json=body, headers={"x-api-key": key, **headers}, timeout=20)


def assert_anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == kind, body
    return body["error"]["message"]


def body_with(**fields) -> dict:
    """A valid request with some fields replaced (None: removed)."""
    body = {"model": SONNET, "max_tokens": 10, "messages": HELLO, **fields}
    return {name: value for name, value in body.items() if value is not None}


def user_says(content) -> dict:
    return body_with(messages=[{"role": "user", "content": content}])
