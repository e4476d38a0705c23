"""Cost of a call from LiteLLM's bundled cost map, read as data: a relay-only worker never imports LiteLLM.

Embeddings are priced the same way: their input tokens at the model's input rate (no output tokens).

Priced the way LiteLLM's `generic_cost_per_token` prices a chat completion: the uncached prompt tokens at the input
rate, cache reads and cache writes at their own rates (a one-hour write at its own rate), reasoning tokens at the
reasoning rate, and every rate at the highest `…_above_N_tokens` tier the whole prompt exceeds. Not priced here
(LiteLLM prices them, we fall back to the standard rates): service tiers, batches, off-peak windows, `tiered_pricing`
tables and audio/image tokens.
"""

import importlib.util
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import orjson

COST_MAP_FILE = "model_prices_and_context_window_backup.json"
TIER_KEY = re.compile(r"^(?:input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
                      r"|cache_creation_input_token_cost)_above_(\d+)(k?)_tokens$")  # fmt: skip
INCLUSIVE_TIER_PROVIDERS = frozenset({"xai"})  # bill the higher tier from the threshold itself


@dataclass(frozen=True)
class TokenUsage:
    """A call's token counts as the provider reported them. `prompt_tokens` includes the cached and cache-written
    tokens (OpenAI's convention, which LiteLLM also uses for Anthropic)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of the cache writes, those kept for an hour (Anthropic prices them higher)
    reasoning_tokens: int = 0


def _field(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def _count(source: Any, *names: str) -> int:
    for name in names:
        value = _field(source, name) if source is not None else None
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, value)
    return 0


def token_usage(usage: Any) -> TokenUsage:
    """Read a usage block: OpenAI's JSON (relay) or LiteLLM's `Usage` object (which also carries Anthropic's
    `cache_read_input_tokens` / `cache_creation_input_tokens` at the top level)."""
    prompt_details = _field(usage, "prompt_tokens_details")
    write_details = _field(prompt_details, "cache_creation_token_details") if prompt_details is not None else None
    return TokenUsage(
        prompt_tokens=_count(usage, "prompt_tokens"),
        completion_tokens=_count(usage, "completion_tokens"),
        cache_read_tokens=_count(usage, "cache_read_input_tokens") or _count(prompt_details, "cached_tokens"),
        cache_write_tokens=_count(usage, "cache_creation_input_tokens")
        or _count(prompt_details, "cache_write_tokens", "cache_creation_tokens"),
        cache_write_1h_tokens=_count(write_details, "ephemeral_1h_input_tokens"),
        reasoning_tokens=_count(_field(usage, "completion_tokens_details"), "reasoning_tokens"),
    )


@cache
def price_table() -> dict[str, dict[str, Any]]:
    """model key -> its entry in the map LiteLLM ships (only entries priced per token)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / COST_MAP_FILE
    try:
        entries = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {
        name: entry
        for name, entry in entries.items()
        if isinstance(entry, dict)
        and "input_cost_per_token" in entry
        and ("output_cost_per_token" in entry or entry.get("mode") == "embedding")  # some embeddings list no output
    }


@cache
def prices_for(litellm_model: str, provider: str | None) -> dict[str, Any] | None:
    table = price_table()
    bare = litellm_model.split("/", 1)[1] if provider and litellm_model.startswith(provider + "/") else litellm_model
    for candidate in (litellm_model, f"{provider}/{bare}" if provider else None, bare):
        if candidate and candidate in table:
            return table[candidate]
    return None


def _rate(entry: dict[str, Any], key: str, default: float | None = 0.0) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else default
    except ValueError:
        return default


def _tiers_exceeded(entry: dict[str, Any], prompt_tokens: int, inclusive: bool) -> list[str]:
    """The `_above_N_tokens` suffixes the prompt exceeds, lowest threshold first (the last one wins)."""
    thresholds = {}
    for key, value in entry.items():
        match = TIER_KEY.match(key)
        if match and value is not None:
            thresholds[f"{match.group(1)}{match.group(2)}"] = int(match.group(1)) * (1000 if match.group(2) else 1)
    return [
        f"_above_{name}_tokens"
        for name, threshold in sorted(thresholds.items(), key=lambda item: item[1])
        if prompt_tokens > threshold or (inclusive and prompt_tokens == threshold)
    ]


def _rates(entry: dict[str, Any], prompt_tokens: int, provider: str | None) -> dict[str, float | None]:
    rates = {
        "input": _rate(entry, "input_cost_per_token"),
        "output": _rate(entry, "output_cost_per_token"),
        "cache_read": _rate(entry, "cache_read_input_token_cost", None),
        "cache_write": _rate(entry, "cache_creation_input_token_cost", None),
    }
    write_1h_key = "cache_creation_input_token_cost_above_1hr"
    for suffix in _tiers_exceeded(entry, prompt_tokens, provider in INCLUSIVE_TIER_PROVIDERS):
        rates["input"] = _rate(entry, "input_cost_per_token" + suffix, rates["input"])
        rates["output"] = _rate(entry, "output_cost_per_token" + suffix, rates["output"])
        rates["cache_read"] = _rate(entry, "cache_read_input_token_cost" + suffix, rates["cache_read"])
        rates["cache_write"] = _rate(entry, "cache_creation_input_token_cost" + suffix, rates["cache_write"])
        if entry.get(f"cache_creation_input_token_cost_above_1hr{suffix}") is not None:
            write_1h_key = f"cache_creation_input_token_cost_above_1hr{suffix}"
    for name in ("cache_read", "cache_write"):  # a provider without a cache price bills cached tokens as input
        if rates[name] is None:
            rates[name] = rates["input"]
    rates["cache_write_1h"] = _rate(entry, write_1h_key, rates["cache_write"])
    rates["reasoning"] = _rate(entry, "output_cost_per_reasoning_token", rates["output"])
    return rates


def cost_usd(litellm_model: str, provider: str | None, usage: TokenUsage) -> Decimal | None:
    entry = prices_for(litellm_model, provider)
    if entry is None:
        return None
    rates = _rates(entry, usage.prompt_tokens, provider)
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    uncached = max(0, usage.prompt_tokens - cached)
    write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    prompt_cost = (
        uncached * rates["input"]
        + usage.cache_read_tokens * rates["cache_read"]
        + (usage.cache_write_tokens - write_1h) * rates["cache_write"]
        + write_1h * rates["cache_write_1h"]
    )
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    completion_cost = (usage.completion_tokens - reasoning) * rates["output"] + reasoning * rates["reasoning"]
    return Decimal(str(round(prompt_cost + completion_cost, 10)))


def estimate_tokens(litellm_model: str, *, messages: list | None = None, text: str | None = None) -> int:
    """A local estimate, for calls where the provider reported no usage (cut streams, disconnects).

    LiteLLM's tokenizer when this worker has LiteLLM loaded anyway; otherwise about four characters a token.
    """
    litellm = sys.modules.get("litellm")
    if litellm is not None:
        try:
            if messages is not None:
                return int(litellm.token_counter(model=litellm_model, messages=messages))
            return int(litellm.token_counter(model=litellm_model, text=text or ""))
        except Exception:  # LiteLLM's tokenizers raise assorted errors on odd input
            pass
    source = text if messages is None else orjson.dumps(messages).decode()
    return (len(source) + 3) // 4 if source else 0
