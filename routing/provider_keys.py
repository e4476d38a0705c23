"""Which environment variables may serve as a provider key.

A model's `api_key_env` goes out as `Authorization: Bearer …` to the model's `api_base`, and an admin user types
both. Without a rule, whoever may edit a model could send any secret of the server (DJANGO_SECRET_KEY,
DATABASE_URL, LLMPROXY_KEY_PEPPER, …) to a host of their choice. A variable qualifies only when it is

- declared by the operator in `LLMPROXY_PROVIDER_KEY_VARS` (comma-separated), or
- named `LLMPROXY_PROVIDER_KEY_<anything>`, or
- one of the providers' standard key variables below,

and never when it is one of the gateway's own settings or secrets: the operator's list cannot re-admit those, so a
typo or a copied example cannot turn the server's secret key into a provider key. Checked on save, on import and
again at call time (a row written around the admin is refused too).
"""

import os

from django.conf import settings

PROVIDER_KEY_PREFIX = "LLMPROXY_PROVIDER_KEY_"
DECLARED_VARS_SETTING = "LLMPROXY_PROVIDER_KEY_VARS"

# Variables whose only purpose is a key for one provider's model API, as LiteLLM and the providers' own SDKs name
# them. Generic or shared ones stay out (GOOGLE_API_KEY also opens other Google Cloud APIs; the short aliases
# CO_API_KEY, OR_API_KEY, WX_API_KEY say too little): an operator declares those explicitly if wanted.
STANDARD_PROVIDER_KEY_VARS = frozenset({
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_AI_API_KEY",
    "GEMINI_API_KEY", "MISTRAL_API_KEY", "CODESTRAL_API_KEY", "COHERE_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY",
    "XAI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "OPENROUTER_API_KEY", "FIREWORKS_API_KEY",
    "FIREWORKS_AI_API_KEY", "PERPLEXITYAI_API_KEY", "DEEPINFRA_API_KEY", "CEREBRAS_API_KEY", "SAMBANOVA_API_KEY",
    "NVIDIA_NIM_API_KEY", "HUGGINGFACE_API_KEY", "DATABRICKS_API_KEY", "DASHSCOPE_API_KEY", "MOONSHOT_API_KEY",
    "NEBIUS_API_KEY", "VOYAGE_API_KEY", "HOSTED_VLLM_API_KEY", "OPENAI_LIKE_API_KEY",
})  # fmt: skip

# The gateway's own configuration: never a provider key, whatever LLMPROXY_PROVIDER_KEY_VARS says.
SERVER_VAR_PREFIXES = ("DJANGO_", "LLMPROXY_")
SERVER_VARS = frozenset({"DATABASE_URL", "POSTGRES_URL", "REDIS_URL", "PGPASSWORD", "SECRET_KEY"})


def declared_provider_key_vars() -> tuple[str, ...]:
    return tuple(getattr(settings, DECLARED_VARS_SETTING, ()))


def is_server_variable(name: str) -> bool:
    upper = name.upper()
    if upper.startswith(PROVIDER_KEY_PREFIX) and upper != DECLARED_VARS_SETTING:
        return False
    return upper in SERVER_VARS or upper.startswith(SERVER_VAR_PREFIXES)


def provider_key_var_refusal(name: str, declared: tuple[str, ...] | None = None) -> str | None:
    """Why `name` may not serve as a provider key, or None when it may."""
    if is_server_variable(name):
        return f"{name} is one of the gateway's own settings, never a provider key."
    if name in STANDARD_PROVIDER_KEY_VARS or (name.startswith(PROVIDER_KEY_PREFIX) and name != PROVIDER_KEY_PREFIX):
        return None
    if name in (declared_provider_key_vars() if declared is None else declared):
        return None
    return (
        f"{name} is not a provider-key variable: name one that starts with {PROVIDER_KEY_PREFIX}, one the operator "
        f"lists in {DECLARED_VARS_SETTING}, or a provider's standard variable such as OPENAI_API_KEY."
    )


def is_allowed_provider_key_var(name: str) -> bool:
    return provider_key_var_refusal(name) is None


def provider_key_status(name: str) -> str:
    """For the admin: whether an allowed variable is set; nothing at all about any other variable."""
    refusal = provider_key_var_refusal(name)
    if refusal is not None:
        return refusal
    return f"{name} is set" if os.environ.get(name) else f"{name} is NOT set"
