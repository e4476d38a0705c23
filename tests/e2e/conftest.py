"""Fixtures for the failover tests: three fake providers, each a process of its own (tests/support/fake_control.py),
and models whose deployments point at them."""

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.fake_control import FakeProviderProcess
from tests.support.live_server import free_port

ATTEMPTS = "x-llmproxy-attempts"


def ask(client: openai.OpenAI, model: str, text: str = "hi", stream: bool = False, **params) -> tuple[str, int]:
    """The answer's text and the gateway's count of provider attempts."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], stream=stream, **params
    )
    attempts = int(raw.headers[ATTEMPTS])
    answer = raw.parse()
    if stream:
        return "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices), attempts
    return answer.choices[0].message.content, attempts


def received(*providers) -> list[int]:
    return [len(provider.requests) for provider in providers]


@pytest.fixture(scope="session")
def fake_provider_processes() -> Iterator[list[FakeProviderProcess]]:
    providers: list[FakeProviderProcess] = []
    try:
        for _ in range(3):
            providers.append(FakeProviderProcess().start())
        yield providers
    finally:
        for provider in providers:
            provider.stop()


@pytest.fixture
def fake_providers(fake_provider_processes: list[FakeProviderProcess]) -> list[FakeProviderProcess]:
    """Three fake providers, each forgetting what it received and healed (reset) for this test."""
    for provider in fake_provider_processes:
        provider.reset()
    return fake_provider_processes


@pytest.fixture
def failover_key(transactional_db) -> str:
    from keys.services import create_api_key

    return create_api_key(name="failover").plaintext


@pytest.fixture
def failover_client(gateway_url: str, failover_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=failover_key, max_retries=0, timeout=30)


def deployment(provider: FakeProviderProcess | None, path: str = "relay", **settings: Any) -> dict[str, Any]:
    """A deployment on `provider` (None: a closed port, nothing listening) served by `path`: "relay" (OpenAI's wire,
    the direct relay), "litellm" (the same through LiteLLM) or "anthropic" (Anthropic's wire, through LiteLLM)."""
    anthropic = path == "anthropic"
    if provider is None:
        base = f"http://127.0.0.1:{free_port()}" + ("" if anthropic else "/v1")
    else:
        base = provider.anthropic_base if anthropic else provider.openai_base
    model = "anthropic/claude-sonnet-4-5" if anthropic else "openai/fake-model"
    return {"litellm_model": model, "api_base": base, "use_litellm": path == "litellm", **settings}


def make_model(name: str, *deployments: dict[str, Any], **fields: Any):
    from routing.services import create_model

    return create_model(name, deployments=list(deployments), **fields)
