"""Real LiteLLM exception objects (as LiteLLM raises them) mapped to what the client is told."""

import os

import httpx
import litellm
import pytest

from api.errors import scrub
from api.provider_errors import map_provider_exception

OPENAI = {"model": "m", "llm_provider": "openai"}
REQUEST = httpx.Request("POST", "http://provider.invalid/v1/chat/completions")


def response(status: int, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=REQUEST)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (litellm.Timeout(message="timed out", **OPENAI), 504, "provider_timeout"),
        (litellm.RateLimitError(message="slow down", **OPENAI, response=response(429)), 429, "provider_rate_limited"),
        (litellm.BadRequestError(message="bad", **OPENAI), 400, "provider_rejected_request"),
        (litellm.ContextWindowExceededError(message="too long", **OPENAI), 400, "provider_rejected_request"),
        (litellm.NotFoundError(message="no such model", **OPENAI), 404, "model_not_found"),
        (litellm.AuthenticationError(message="bad key", **OPENAI), 502, "provider_auth_error"),
        (litellm.ServiceUnavailableError(message="down", **OPENAI), 503, "provider_unavailable"),
        (litellm.InternalServerError(message="boom", **OPENAI), 502, "provider_error"),
        (litellm.APIConnectionError(message="Connection error.", **OPENAI), 502, "provider_unreachable"),
        (RuntimeError("unexpected"), 502, "provider_error"),
    ],
)  # fmt: skip
def test_provider_failures_map_to_documented_statuses(exc, status, code):
    error = map_provider_exception(exc, model="m")
    assert (error.status, error.code) == (status, code)
    assert set(error.as_dict()["error"]) == {"message", "type", "param", "code"}


def test_rate_limit_carries_retry_after():
    exc = litellm.RateLimitError(message="slow down", **OPENAI, response=response(429, {"retry-after": "7"}))
    assert map_provider_exception(exc, model="m").headers == {"Retry-After": "7"}


def test_provider_messages_are_scrubbed(monkeypatch):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "super-secret-provider-value")
    exc = litellm.BadRequestError(
        message="bad key super-secret-provider-value for https://h/v1?key=abc123456 "
        "Authorization: Bearer sk-abcdefghijk",
        model="m",
        llm_provider="openai",
    )
    message = map_provider_exception(exc, model="m").message
    assert "super-secret-provider-value" not in message
    assert "abc123456" not in message and "sk-abcdefghijk" not in message
    assert "[redacted]" in message
    assert os.environ["SOME_PROVIDER_API_KEY"] not in scrub(str(exc))


def test_our_own_keys_are_scrubbed():
    assert "llmp_" + "a" * 20 not in scrub("key llmp_" + "a" * 20 + " was used")
