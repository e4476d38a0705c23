"""What a request is billed: nothing for a request the provider refused or never answered, the provider's cached
and cache-written tokens at their own prices, and every generated text when usage must be estimated."""

import httpx
import openai
import pytest

from tests.support.live_server import free_port
from tests.support.request_log import logged_rows
from tests.usage.conftest import budget_spent_micro_usd, wait_for_rows

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]
LONG_PROMPT = [{"role": "user", "content": " ".join(["word"] * 400)}]  # ~$0.001 of gpt-4o input
CACHED_PROMPT = [{"role": "user", "content": "CACHE " + " ".join(["word"] * 99)}]  # 100 tokens, half cached
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]  # fmt: skip


def post(gateway_url: str, key: str, timeout: float = 30, **body) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": HELLO, **body},
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
    )


def add_model(name: str, **fields) -> None:
    from routing.services import create_model

    create_model(name, **fields)


@pytest.fixture
def priced_model(fake_provider) -> str:
    add_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base)
    return "gpt-4o"


def budget_key(name: str = "billed") -> str:
    from keys.services import create_api_key

    return create_api_key(name=name, max_budget_usd="0.0005", budget_period="day").plaintext


def litellm_cost(model: str, provider: str, usage) -> float:
    import litellm

    prompt, completion = litellm.cost_per_token(model=model, custom_llm_provider=provider, usage_object=usage)
    return prompt + completion


# Item 10: failed requests are not billed


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("status", [500, 503])
def test_a_request_the_provider_refused_costs_nothing(gateway_url, priced_model, fake_provider, limit_backend,
                                                      status, stream):  # fmt: skip
    key = budget_key()
    fake_provider.fail_next("status", status=status)
    assert post(gateway_url, key, messages=LONG_PROMPT, stream=stream).status_code in (502, 503)
    [row] = logged_rows()
    assert row.end_reason == "provider_error"
    assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (0, 0, False)
    assert not row.cost_usd
    assert budget_spent_micro_usd("billed") == 0
    assert post(gateway_url, key).status_code == 200  # the budget is untouched


def test_a_refused_connection_costs_nothing(gateway_url, limit_backend):
    add_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=f"http://127.0.0.1:{free_port()}/v1")
    key = budget_key()
    response = post(gateway_url, key, messages=LONG_PROMPT)
    assert response.json()["error"]["code"] == "provider_unreachable"
    [row] = logged_rows()
    assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (0, 0, False)
    assert not row.cost_usd
    assert budget_spent_micro_usd("billed") == 0


def test_a_provider_timeout_before_any_answer_costs_nothing(gateway_url, fake_provider, limit_backend):
    add_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base, timeout_seconds=1)
    key = budget_key()
    fake_provider.fail_next("slow", delay=5)
    assert post(gateway_url, key, messages=LONG_PROMPT).status_code == 504
    [row] = logged_rows()
    assert (row.end_reason, row.prompt_tokens, row.completion_tokens) == ("timeout", 0, 0)
    assert budget_spent_micro_usd("billed") == 0


def test_a_call_abandoned_while_the_provider_works_is_billed_its_prompt(gateway_url, priced_model, fake_provider):
    """The documented choice: the provider had the prompt and bills it; the answer nobody saw is not estimated."""
    from keys.services import create_api_key

    key = create_api_key(name="abandoner").plaintext
    fake_provider.fail_next("slow", delay=5)
    with pytest.raises(httpx.ReadTimeout):
        post(gateway_url, key, timeout=0.5, messages=LONG_PROMPT)
    [row] = wait_for_rows(1)
    assert (row.end_reason, row.usage_estimated) == ("client_disconnected", True)
    assert row.prompt_tokens >= 400 and row.completion_tokens == 0
    assert row.cost_usd > 0


def test_a_stream_cut_after_the_provider_answered_keeps_its_estimate(gateway_url, priced_model, fake_provider,
                                                                     limit_backend):  # fmt: skip
    key = budget_key()
    fake_provider.chunk_delay = 0.05
    fake_provider.fail_next("cut", after=3)
    post(gateway_url, key, messages=[{"role": "user", "content": "REPEAT 30"}], stream=True)
    [row] = logged_rows()
    assert (row.end_reason, row.usage_estimated) == ("provider_error", True)
    assert row.prompt_tokens > 0 and row.completion_tokens > 0 and row.cost_usd > 0
    assert budget_spent_micro_usd("billed") == round(row.cost_usd * 1_000_000)


# Item 11: cached and cache-written tokens


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_cached_prompt_tokens_are_logged_and_priced_as_litellm_prices_them(openai_client, priced_model, stream):
    from litellm.types.utils import Usage

    answer = openai_client.chat.completions.create(model="gpt-4o", messages=CACHED_PROMPT, stream=stream)
    if stream:
        list(answer)
    [row] = logged_rows()
    assert (row.prompt_tokens, row.cache_read_tokens, row.cache_write_tokens) == (100, 50, 0)
    usage = Usage(prompt_tokens=100, completion_tokens=row.completion_tokens,
                  prompt_tokens_details={"cached_tokens": 50})  # fmt: skip
    assert float(row.cost_usd) == pytest.approx(litellm_cost("gpt-4o", "openai", usage), rel=1e-6)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_cache_reads_and_writes_are_logged_and_priced(openai_client, fake_provider, stream):
    from litellm.types.utils import Usage

    add_model("claude-sonnet-4-5", api_base=fake_provider.anthropic_base)
    answer = openai_client.chat.completions.create(model="claude-sonnet-4-5", messages=CACHED_PROMPT, stream=stream)
    if stream:
        list(answer)
    [row] = logged_rows()
    assert (row.prompt_tokens, row.cache_read_tokens, row.cache_write_tokens) == (100, 50, 25)
    usage = Usage(prompt_tokens=100, completion_tokens=row.completion_tokens,
                  prompt_tokens_details={"cached_tokens": 50, "cache_creation_tokens": 25})  # fmt: skip
    expected = litellm_cost("claude-sonnet-4-5", "anthropic", usage)
    assert float(row.cost_usd) == pytest.approx(expected, rel=1e-6)
    assert expected < litellm_cost("claude-sonnet-4-5", "anthropic", Usage(prompt_tokens=100,
                                   completion_tokens=row.completion_tokens))  # fmt: skip


# Item 15: every generated text counts when usage is estimated


def test_a_cut_tool_call_stream_counts_the_call_already_sent(openai_client, fake_provider):
    fake_provider.chunk_delay = 0.05
    fake_provider.fail_next("cut", after=2)
    with pytest.raises(openai.APIError):
        list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, tools=TOOLS, stream=True))
    [row] = logged_rows()
    assert (row.end_reason, row.usage_estimated) == ("provider_error", True)
    assert row.completion_tokens >= 5  # "get_weather" and two pieces of '{"location": "Paris"}'
