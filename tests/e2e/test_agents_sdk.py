"""The OpenAI Agents SDK against a live gateway: its default Responses model, a tool loop, plain and streamed.

The agent names no model, so the SDK sends its own default model id (with that model's default settings) through
`client.responses.create`; the gateway allows that id and points it at the fake provider. A second agent runs on a
Claude model, which the gateway serves through LiteLLM's Responses bridge. Tracing is disabled (no network).
"""

import asyncio
from collections.abc import Iterator

import openai
import pytest
from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled
from agents.models import _openai_shared
from agents.models.default_models import get_default_model
from django.conf import settings

from tests.support.fake_wire import TOOL_INPUT
from tests.support.request_log import rows_once_logged

pytestmark = pytest.mark.django_db(transaction=True)

CLAUDE = "claude-sonnet-4-5"


@function_tool
def get_weather(location: str) -> str:
    """The weather in a city."""
    return f"sunny in {location}"


@pytest.fixture
def agent_client(gateway_url, api_key, policy, fake_provider) -> Iterator[openai.AsyncOpenAI]:
    from routing.services import create_model

    create_model(get_default_model(), litellm_model="openai/fake-agent", api_base=fake_provider.openai_base)
    create_model(CLAUDE, litellm_model=f"anthropic/{CLAUDE}", api_base=fake_provider.anthropic_base)
    client = openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0, timeout=20)
    previous = _openai_shared.get_default_openai_client()
    set_tracing_disabled(True)
    set_default_openai_client(client, use_for_tracing=False)
    yield client
    set_default_openai_client(previous, use_for_tracing=False)


def run_plain_and_streamed(agent: Agent) -> tuple[str, str]:
    async def both() -> tuple[str, str]:
        plain = await Runner.run(agent, "What is the weather in Paris?")
        streamed = Runner.run_streamed(agent, "What is the weather in Paris?")
        async for _ in streamed.stream_events():
            pass
        return plain.final_output, streamed.final_output

    return asyncio.run(both())


def test_an_agent_on_its_default_responses_model_calls_a_tool(agent_client, fake_provider):
    agent = Agent(name="weather", instructions="Answer briefly.", tools=[get_weather])
    assert run_plain_and_streamed(agent) == ("Tool said: sunny in Paris", "Tool said: sunny in Paris")
    requests = fake_provider.requests
    assert [request.path for request in requests] == ["/v1/responses"] * 4
    assert {request.body["model"] for request in requests} == {"fake-agent"}
    if settings.LLMPROXY_DIRECT_RELAY:  # LiteLLM asks for the whole answer of a model outside its catalogue
        assert [bool(request.body.get("stream")) for request in requests] == [False, False, True, True]
    call_output = requests[1].body["input"][-1]
    assert (call_output["type"], call_output["output"]) == ("function_call_output", "sunny in Paris")
    rows = rows_once_logged(4)
    assert [(row.endpoint, row.requested_model, row.status) for row in rows] == [
        ("responses", get_default_model(), 200)
    ] * 4
    assert all(row.prompt_tokens > 0 and row.completion_tokens > 0 for row in rows)


def test_an_agent_on_claude_runs_through_the_bridge(agent_client, fake_provider):
    agent = Agent(name="weather", instructions="Answer briefly.", model=CLAUDE, tools=[get_weather])
    assert run_plain_and_streamed(agent) == ("Tool said: sunny in Paris", "Tool said: sunny in Paris")
    requests = fake_provider.requests
    assert [request.path for request in requests] == ["/v1/messages"] * 4
    tool_use = requests[1].body["messages"][1]["content"][0]
    assert (tool_use["type"], tool_use["name"], tool_use["input"]) == ("tool_use", "get_weather", TOOL_INPUT)
    assert [row.endpoint for row in rows_once_logged(4)] == ["responses"] * 4
