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


# Providers that speak OpenAI's wire format (the direct relay can forward to them).
OPENAI_WIRE_PROVIDERS = frozenset({"openai", "hosted_vllm", "openai_like", "custom_openai"})
# Providers whose LiteLLM configuration the gateway calls itself for chat (api/translated.py), each verified against
# the fake provider's contracts of its wire; the others stay on litellm.acompletion.
TRANSLATED_PROVIDERS = frozenset({"anthropic"})
# Servers an operator runs: they have no default host, and LiteLLM falls back to OpenAI's (or to an environment
# variable) without an api_base, which would send a prompt meant for a private server to a third party.
SELF_HOSTED_PROVIDERS = frozenset(
    {
        "hosted_vllm", "vllm", "openai_like", "custom_openai", "lm_studio", "llamafile", "ollama", "ollama_chat",
        "xinference", "oobabooga", "docker_model_runner", "litellm_proxy", "triton",
    }
)  # fmt: skip


def needs_api_base(provider: str | None) -> bool:
    return provider in SELF_HOSTED_PROVIDERS


def relayable(provider: str | None, api_base: str | None) -> bool:
    """OpenAI itself, or an OpenAI-wire server at its own api_base: never OpenAI's host for anyone else's model."""
    return provider == "openai" or (provider in OPENAI_WIRE_PROVIDERS and bool(api_base))


def takes_max_completion_tokens(provider_model: str, provider: str | None) -> bool:
    """LiteLLM's rule (OpenAIOSeriesConfig / OpenAIGPT5Config) for OpenAI models that refuse `max_tokens`.

    One difference: LiteLLM also requires an o-series id to be in its bundled catalogue; we take every `o<digit>`
    id (retired o1-mini/o1-preview, ids newer than the catalogue), since OpenAI refuses `max_tokens` for all of them.
    """
    if provider != "openai":
        return False
    name = provider_model.split("/")[-1]
    o_series = len(name) > 1 and name[0] == "o" and name[1].isdigit()
    gpt_5 = any(marker in provider_model for marker in ("gpt-5", "gpt-6")) and "gpt-5-chat" not in name
    return o_series or gpt_5


# Providers whose LiteLLM call passes fields it does not know in the request body (through the OpenAI SDK's
# extra_body: litellm.utils.add_provider_specific_params_to_optional_params); a subset of LiteLLM's own list.
EXTRA_FIELDS_IN_BODY = OPENAI_WIRE_PROVIDERS | frozenset(
    {
        "azure", "lm_studio", "llamafile", "xinference", "groq", "deepseek", "xai", "together_ai", "fireworks_ai",
        "deepinfra", "perplexity", "cerebras", "nvidia_nim", "sambanova",
    }
)  # fmt: skip
# Elsewhere LiteLLM copies a keyword argument it does not map into the provider body as a top-level field: only
# fields the provider documents go there (Anthropic Messages API: https://docs.anthropic.com/en/api/messages).
PROVIDER_EXTRA_FIELDS: dict[str, frozenset[str]] = {"anthropic": frozenset({"top_k", "thinking"})}


def accepted_extra_fields(provider: str | None) -> frozenset[str] | None:
    """The non-OpenAI request fields a provider takes: None means any (sent in the body), else exactly these."""
    if provider in EXTRA_FIELDS_IN_BODY:
        return None
    return PROVIDER_EXTRA_FIELDS.get(provider or "", frozenset())
