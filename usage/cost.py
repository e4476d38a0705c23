"""Cost of a call from LiteLLM's local cost map (None when the model is not in it)."""

from decimal import Decimal
from functools import lru_cache


@lru_cache(maxsize=1024)
def _prices(litellm_model: str, provider: str | None) -> tuple[float, float] | None:
    import litellm

    try:
        prompt, completion = litellm.cost_per_token(
            model=litellm_model, custom_llm_provider=provider, prompt_tokens=1_000_000, completion_tokens=1_000_000
        )
    except Exception:  # LiteLLM raises assorted errors for models missing from its map
        return None
    return prompt / 1_000_000, completion / 1_000_000


def cost_usd(litellm_model: str, provider: str | None, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    prices = _prices(litellm_model, provider)
    if prices is None:
        return None
    return Decimal(str(round(prices[0] * prompt_tokens + prices[1] * completion_tokens, 8)))


def estimate_tokens(litellm_model: str, *, messages: list | None = None, text: str | None = None) -> int:
    """A local estimate, for calls where the provider reported no usage (cut streams, disconnects)."""
    import litellm

    try:
        if messages is not None:
            return int(litellm.token_counter(model=litellm_model, messages=messages))
        return int(litellm.token_counter(model=litellm_model, text=text or ""))
    except Exception:
        source = text if text is not None else str(messages)
        return max(1, len(source) // 4) if source else 0
