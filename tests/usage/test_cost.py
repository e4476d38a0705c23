"""Our cost figure (read from LiteLLM's bundled map as data) equals LiteLLM's own for cached, cache-write and
long-context usage."""

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

from litellm.llms.anthropic.chat.transformation import AnthropicConfig  # noqa: E402
from litellm.types.utils import Usage  # noqa: E402

from usage.cost import TokenUsage, cost_usd, token_usage  # noqa: E402


def litellm_cost(model: str, provider: str, usage: Usage) -> float:
    prompt, completion = litellm.cost_per_token(model=model, custom_llm_provider=provider, usage_object=usage)
    return prompt + completion


def openai_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict:
    """Usage as OpenAI's JSON carries it (what the relay reads)."""
    usage: dict = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def anthropic_usage(fresh: int, output: int, read: int = 0, written: int = 0, written_1h: int = 0) -> Usage:
    """Usage as LiteLLM builds it from Anthropic's answer (what the LiteLLM path reads)."""
    raw = {"input_tokens": fresh, "output_tokens": output, "cache_read_input_tokens": read,
           "cache_creation_input_tokens": written}  # fmt: skip
    if written_1h:
        raw["cache_creation"] = {"ephemeral_5m_input_tokens": written - written_1h,
                                 "ephemeral_1h_input_tokens": written_1h}  # fmt: skip
    return AnthropicConfig().calculate_usage(raw, reasoning_content=None)


OPENAI_CASES = [
    ("gpt-4o", "openai", openai_usage(1000, 200, cached=600)),
    ("gpt-4o-mini", "openai", openai_usage(5000, 10, cached=4096)),
    ("o3-mini", "openai", openai_usage(300, 900, cached=128, reasoning=700)),
    ("gpt-5.4", "openai", openai_usage(300_000, 1000, cached=100_000)),  # above the 272k tier
    ("gpt-5.4", "openai", openai_usage(272_000, 1000)),  # at the threshold: still the base tier
    ("gemini/gemini-2.5-pro", "gemini", openai_usage(250_000, 2000, cached=50_000)),  # above 200k
    ("gemini/gemini-2.5-pro", "gemini", openai_usage(150_000, 2000, cached=50_000)),
    ("dashscope/qwen-turbo", "dashscope", openai_usage(400, 900, reasoning=700)),  # its own reasoning rate
]

ANTHROPIC_CASES = [
    ("claude-sonnet-4-5", anthropic_usage(100, 50, read=3000, written=500)),
    ("claude-sonnet-4-5", anthropic_usage(100, 50, read=3000, written=1500, written_1h=1000)),
    ("claude-haiku-4-5", anthropic_usage(10, 400, written=2048)),
    ("claude-haiku-5-5", anthropic_usage(20_000, 400, read=90_000, written=5000, written_1h=2000)),  # above 100k
]


@pytest.mark.parametrize(("model", "provider", "usage"), OPENAI_CASES)
def test_openai_usage_is_priced_as_litellm_prices_it(model, provider, usage):
    ours = cost_usd(model, provider, token_usage(usage))
    assert ours is not None
    assert float(ours) == pytest.approx(litellm_cost(model, provider, Usage(**usage)), rel=1e-9, abs=1e-10)


@pytest.mark.parametrize(("model", "usage"), ANTHROPIC_CASES)
def test_anthropic_cache_reads_and_writes_are_priced_as_litellm_prices_them(model, usage):
    ours = cost_usd(model, "anthropic", token_usage(usage))
    assert ours is not None
    assert float(ours) == pytest.approx(litellm_cost(model, "anthropic", usage), rel=1e-9, abs=1e-10)


def test_cached_tokens_cost_less_than_fresh_ones():
    fresh = cost_usd("gpt-4o", "openai", TokenUsage(prompt_tokens=1000, completion_tokens=0))
    cached = cost_usd("gpt-4o", "openai", token_usage(openai_usage(1000, 0, cached=1000)))
    assert cached == fresh / 2  # gpt-4o reads its cache at half the input price


def test_the_usage_details_are_read_from_both_paths():
    relayed = token_usage(openai_usage(1000, 5, cached=600))
    assert (relayed.prompt_tokens, relayed.cache_read_tokens, relayed.cache_write_tokens) == (1000, 600, 0)
    through_litellm = token_usage(anthropic_usage(100, 5, read=300, written=500, written_1h=200))
    assert (through_litellm.prompt_tokens, through_litellm.cache_read_tokens) == (900, 300)
    assert (through_litellm.cache_write_tokens, through_litellm.cache_write_1h_tokens) == (500, 200)


def test_embedding_models_are_priced_per_input_token():
    from decimal import Decimal

    assert cost_usd("openai/text-embedding-3-small", "openai", TokenUsage(prompt_tokens=1000)) == Decimal("0.00002")
    assert cost_usd("mistral/mistral-embed", "mistral", TokenUsage(prompt_tokens=1000)) == Decimal("0.0001")
