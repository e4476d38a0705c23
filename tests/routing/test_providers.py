import pytest

from routing.providers import provider_model_name, resolve_provider


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
