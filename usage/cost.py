"""Cost of a call from LiteLLM's bundled cost map, read as data: a relay-only worker never imports LiteLLM."""

import importlib.util
import sys
from decimal import Decimal
from functools import cache
from pathlib import Path

import orjson

COST_MAP_FILE = "model_prices_and_context_window_backup.json"


@cache
def price_table() -> dict[str, tuple[float, float]]:
    """model key -> (USD per prompt token, USD per completion token), from the map LiteLLM ships."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / COST_MAP_FILE
    try:
        entries = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    table = {}
    for name, entry in entries.items():
        if isinstance(entry, dict) and "input_cost_per_token" in entry and "output_cost_per_token" in entry:
            table[name] = (float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"]))
    return table


@cache
def prices_for(litellm_model: str, provider: str | None) -> tuple[float, float] | None:
    table = price_table()
    bare = litellm_model.split("/", 1)[1] if provider and litellm_model.startswith(provider + "/") else litellm_model
    for candidate in (litellm_model, f"{provider}/{bare}" if provider else None, bare):
        if candidate and candidate in table:
            return table[candidate]
    return None


def cost_usd(litellm_model: str, provider: str | None, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    prices = prices_for(litellm_model, provider)
    if prices is None:
        return None
    return Decimal(str(round(prices[0] * prompt_tokens + prices[1] * completion_tokens, 10)))


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
