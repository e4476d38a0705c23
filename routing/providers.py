"""Which provider a LiteLLM model string goes to.

LiteLLM decides first; a small prefix table answers for ids LiteLLM no longer knows offline
(retired ones such as claude-3-5-sonnet-20241022), and a model with its own api_base that nothing
recognises is treated as an OpenAI-compatible server (vLLM, Ollama's /v1, LM Studio, …).
"""

from functools import lru_cache

PREFIX_FALLBACK: tuple[tuple[str, str], ...] = (
    ("claude-", "anthropic"),
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding-", "openai"),
    ("gemini-", "gemini"),
    ("mistral-", "mistral"),
    ("codestral-", "mistral"),
    ("open-mistral-", "mistral"),
    ("command-", "cohere_chat"),
    ("deepseek-", "deepseek"),
    ("grok-", "xai"),
)


def quiet_litellm():
    """LiteLLM, told not to print its banners ("Provider List: …") when it cannot place a model."""
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def known_providers() -> frozenset[str]:
    litellm = quiet_litellm()
    return frozenset(str(p.value if hasattr(p, "value") else p) for p in litellm.provider_list)


@lru_cache(maxsize=1024)
def provider_from_litellm(litellm_model: str) -> str | None:
    litellm = quiet_litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=litellm_model)
    except Exception:  # LiteLLM raises BadRequestError (and others) when it cannot tell
        return None
    return provider or None


def provider_from_prefix(litellm_model: str) -> str | None:
    explicit, _, rest = litellm_model.partition("/")
    if rest and explicit in known_providers():
        return explicit
    for prefix, provider in PREFIX_FALLBACK:
        if litellm_model.startswith(prefix):
            return provider
    return None


def resolve_provider(litellm_model: str, api_base: str | None = None) -> str | None:
    """The provider that serves `litellm_model`, or None when nothing can route it."""
    provider = provider_from_litellm(litellm_model) or provider_from_prefix(litellm_model)
    if provider is None and api_base:
        return "openai"
    return provider


def provider_model_name(litellm_model: str, provider: str) -> str:
    """The model id the provider itself expects: LiteLLM's `provider/` prefix stripped."""
    prefix = provider + "/"
    return litellm_model[len(prefix) :] if litellm_model.startswith(prefix) else litellm_model
