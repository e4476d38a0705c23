import pytest

from routing.providers import (
    EXTRA_FIELDS_IN_BODY,
    accepted_extra_fields,
    needs_api_base,
    provider_model_name,
    relayable,
    resolve_provider,
    takes_max_completion_tokens,
)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o", "openai"),
        ("openai/gpt-4o", "openai"),
        ("anthropic/claude-3-5-sonnet-20241022", "anthropic"),
        ("claude-sonnet-4-5", "anthropic"),
        # Retired ids LiteLLM no longer knows offline: the prefix fallback answers.
        ("claude-3-5-sonnet-20241022", "anthropic"),
        ("claude-3-7-sonnet-20250219", "anthropic"),
        ("gemini-2.0-flash", "gemini"),
        ("o3-mini-2099-01-01", "openai"),
        ("mistral-large-2099", "mistral"),
    ],
)
def test_provider_from_the_model_name(model, provider):
    assert resolve_provider(model) == provider


def test_unknown_name_cannot_be_routed_without_an_api_base():
    assert resolve_provider("my-local-llama") is None


def test_unknown_name_with_an_api_base_is_openai_compatible():
    assert resolve_provider("my-local-llama", "http://127.0.0.1:8001/v1") == "openai"


def test_provider_prefix_is_stripped_for_the_provider():
    assert provider_model_name("openai/gpt-4o", "openai") == "gpt-4o"
    assert provider_model_name("meta-llama/Llama-3-8B", "openai") == "meta-llama/Llama-3-8B"


# The rules mirrored from LiteLLM, checked against LiteLLM itself (imported here only: never on the hot path).

MODEL_IDS = [
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-3.5-turbo", "chatgpt-4o-latest", "o1", "o1-2024-12-17", "o1-pro",
    "o3", "o3-mini", "o3-mini-2025-01-31", "o3-pro", "o3-deep-research", "o4-mini", "o4-mini-2025-04-16",
    "gpt-5", "gpt-5-2025-08-07", "gpt-5-mini", "gpt-5-nano", "gpt-5-pro", "gpt-5-codex", "gpt-5-chat",
    "gpt-5-chat-latest", "gpt-5.1", "gpt-5.1-chat-latest", "gpt-5.2-codex", "gpt-5-search-api", "gpt-6-luna",
    "ft:gpt-5-mini:acme::abc123", "omni-moderation-latest", "fake-model",
]  # fmt: skip
# Outside LiteLLM's bundled catalogue LiteLLM sends max_tokens to an o-series id; OpenAI refuses that for every one.
NOT_IN_LITELLMS_CATALOGUE = ["o1-mini", "o1-preview", "o5", "o3-2099-01-01"]


def litellm_token_field(model: str) -> str:
    import litellm

    sent = litellm.get_optional_params(model=model, custom_llm_provider="openai", max_tokens=10)
    return "max_completion_tokens" if "max_completion_tokens" in sent else "max_tokens"


@pytest.mark.parametrize("model", MODEL_IDS)
def test_the_token_field_is_the_one_litellm_sends(model):
    ours = "max_completion_tokens" if takes_max_completion_tokens(model, "openai") else "max_tokens"
    assert ours == litellm_token_field(model)


@pytest.mark.parametrize("model", NOT_IN_LITELLMS_CATALOGUE)
def test_o_series_ids_outside_litellms_catalogue_still_get_max_completion_tokens(model):
    assert litellm_token_field(model) == "max_tokens"  # the documented difference; if LiteLLM changes, revisit
    assert takes_max_completion_tokens(model, "openai")


@pytest.mark.parametrize("provider", ["hosted_vllm", "anthropic", "azure", None])
def test_only_openai_itself_takes_max_completion_tokens_from_us(provider):
    assert not takes_max_completion_tokens("o3", provider)


def test_providers_said_to_take_unknown_fields_in_the_body_do_so_in_litellm():
    import litellm

    through_openai_sdk = {"openai", "azure", "custom_openai", *litellm.openai_compatible_providers}
    relayed_only = {"openai_like"}  # LiteLLM has no chat route for it: we call it as custom_openai
    assert EXTRA_FIELDS_IN_BODY - relayed_only <= through_openai_sdk
    assert accepted_extra_fields("openai") is None and accepted_extra_fields("hosted_vllm") is None
    assert accepted_extra_fields("anthropic") == {"top_k", "thinking"}
    assert accepted_extra_fields("gemini") == frozenset()


@pytest.mark.parametrize(
    ("provider", "api_base", "relay"),
    [
        ("openai", None, True),
        ("openai", "http://10.0.0.1/v1", True),
        ("hosted_vllm", "http://10.0.0.1/v1", True),
        ("hosted_vllm", None, False),
        ("openai_like", None, False),
        ("custom_openai", None, False),
        ("anthropic", "http://10.0.0.1", False),
    ],
)
def test_the_relay_goes_to_openai_only_for_openai(provider, api_base, relay):
    assert relayable(provider, api_base) is relay


def test_self_hosted_providers_need_an_api_base():
    assert needs_api_base("hosted_vllm") and needs_api_base("openai_like") and needs_api_base("custom_openai")
    assert not needs_api_base("openai") and not needs_api_base("anthropic")


def test_self_hosted_prefixes_are_stripped_for_the_provider():
    assert provider_model_name("hosted_vllm/meta-llama/Llama-3-8B", "hosted_vllm") == "meta-llama/Llama-3-8B"
    assert provider_model_name("openai_like/qwen3", "openai_like") == "qwen3"
