"""The LiteLLM interface the translated path (api/translated.py) calls, checked so that an upgrade fails here, loudly.

LiteLLM is pinned (requirements.in); its provider configurations are not a documented API, so each method, function
and class the path uses is checked by signature, and one request goes round trip through the configuration and the
fake provider's Anthropic wire (tests/support/fake_anthropic.py) without a server: body accepted, answer and stream
translated back. tests/e2e/test_translated_parity.py compares the whole path with litellm.acompletion.
"""

import asyncio
import inspect
from types import SimpleNamespace

import litellm
import pytest
from litellm.anthropic_beta_gated_fields import strip_beta_gated_request_body
from litellm.anthropic_beta_headers_manager import update_request_with_filtered_beta
from litellm.litellm_core_utils.exception_mapping_utils import exception_type
from litellm.litellm_core_utils.url_utils import ensure_api_route
from litellm.llms.anthropic.chat.handler import ModelResponseIterator
from litellm.llms.anthropic.chat.transformation import ANTHROPIC_TOOL_NAME_REVERSE_MAP_KEY, AnthropicConfig
from litellm.utils import PROVIDER_UNVALIDATED_PARAMS, get_optional_params

from api import translated
from routing.policy import ModelPolicy
from routing.resolver import Route
from tests.support.fake_anthropic import anthropic_json, anthropic_refusal, anthropic_stream

PINNED = "1.110.2"


def parameters(function) -> set[str]:
    return set(inspect.signature(function).parameters)


# Each callable and the keyword arguments api/translated.py passes to it.
CALLS = [
    (litellm.ProviderConfigManager.get_provider_chat_config, {"model", "provider"}),
    (AnthropicConfig.get_supported_openai_params, {"model"}),
    (AnthropicConfig.map_openai_params, {"non_default_params", "optional_params", "model", "drop_params"}),
    (AnthropicConfig.translate_developer_role_to_system_role, {"messages", "model", "custom_llm_provider", "api_base",
                                                               "model_info"}),
    (AnthropicConfig.get_complete_url, {"api_base", "api_key", "model", "optional_params", "litellm_params",
                                        "stream"}),
    (AnthropicConfig.validate_environment, {"api_key", "headers", "model", "messages", "optional_params",
                                            "litellm_params", "api_base"}),
    (AnthropicConfig.async_transform_request, {"model", "messages", "optional_params", "litellm_params", "headers"}),
    (AnthropicConfig.transform_response, {"model", "raw_response", "model_response", "logging_obj", "api_key",
                                          "request_data", "messages", "optional_params", "litellm_params", "encoding",
                                          "json_mode"}),
    (AnthropicConfig.get_error_class, {"error_message", "status_code", "headers"}),
    (ModelResponseIterator.__init__, {"streaming_response", "sync_stream", "json_mode", "speed",
                                      "tool_name_reverse_map", "response_format_schema"}),
    (update_request_with_filtered_beta, {"headers", "request_data", "provider", "api_base"}),
    (strip_beta_gated_request_body, {"drop_params", "model", "provider"}),
    (exception_type, {"model", "original_exception", "custom_llm_provider"}),
    (ensure_api_route, {"api_base", "route"}),
]  # fmt: skip


def test_litellm_is_the_pinned_version():
    from importlib.metadata import version

    assert version("litellm") == PINNED, "re-run tests/e2e/test_translated_parity.py and this file after an upgrade"


@pytest.mark.parametrize(("function", "used"), CALLS, ids=lambda item: getattr(item, "__qualname__", ""))
def test_each_call_still_takes_the_arguments_the_path_passes(function, used):
    missing = used - parameters(function)
    assert not missing, f"{function.__qualname__} no longer takes {sorted(missing)}: update api/translated.py"


def test_the_anthropic_configuration_and_iterator_are_the_ones_the_path_uses():
    config = litellm.ProviderConfigManager.get_provider_chat_config(
        model="claude-x", provider=litellm.LlmProviders("anthropic")
    )
    assert type(config) is AnthropicConfig and config.custom_llm_provider in (None, "anthropic")
    assert inspect.iscoroutinefunction(AnthropicConfig.async_transform_request)
    assert hasattr(ModelResponseIterator, "__anext__") and hasattr(ModelResponseIterator, "chunk_parser")
    assert isinstance(ANTHROPIC_TOOL_NAME_REVERSE_MAP_KEY, str)
    assert {"stream_options", "user"} <= PROVIDER_UNVALIDATED_PARAMS


def test_the_mapping_the_path_does_is_what_get_optional_params_does_for_the_translated_fields():
    """api/translated.py maps the params itself (checked fields, supported by the model), skipping the model lookups
    of get_optional_params; both must agree on every field it lets through."""
    params = {"max_tokens": 20, "max_completion_tokens": 30, "temperature": 0.3, "top_p": 0.5, "stop": ["x", "y"],
              "user": "u", "tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False,
              "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    assert set(params) - {"stream"} == translated.TRANSLATED_FIELDS
    expected = get_optional_params(model="claude-x", custom_llm_provider="anthropic", messages=MESSAGES, **params)
    config = translated.provider_config("anthropic", "claude-x")
    mapped = config.map_openai_params(non_default_params=dict(params), optional_params={}, model="claude-x",
                                      drop_params=False)  # fmt: skip
    assert mapped == expected


def route(**params) -> Route:
    model = ModelPolicy(name="claude", litellm_model="anthropic/claude-x", provider="anthropic",
                        api_base="http://fake.invalid", api_key_env=None)  # fmt: skip
    return Route(requested_model="claude", model=model, params=params)


MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi there"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def test_a_request_round_trips_through_the_configuration_and_the_fake_anthropic_wire():
    translation = asyncio.run(translated.translate_request(route(max_tokens=20, stop=["zzz"], user="u-1"),
                                                           MESSAGES, stream=False))  # fmt: skip
    assert translation.url == "http://fake.invalid/v1/messages"
    assert translation.headers["anthropic-version"] and "x-api-key" in translation.headers
    body = translation.body
    assert anthropic_refusal(body) is None, body
    assert (body["model"], body["max_tokens"], body["stop_sequences"], body["metadata"]) == (
        "claude-x", 20, ["zzz"], {"user_id": "u-1"},
    )  # fmt: skip
    assert body["system"][0]["text"] == "Be terse."
    import httpx

    answer = translation.config.transform_response(
        model=translation.model, raw_response=httpx.Response(200, json=anthropic_json(body, 1)),
        model_response=litellm.ModelResponse(), logging_obj=translated.NO_LOGGING, api_key=None, request_data=body,
        messages=translation.messages, optional_params=translation.optional_params,
        litellm_params=translation.litellm_params, encoding=None, json_mode=translation.json_mode,
    )  # fmt: skip
    assert answer.choices[0].message.content == "Hello! You said: hi there"
    assert answer.choices[0].finish_reason == "stop" and answer.usage.completion_tokens > 0


def test_a_stream_round_trips_through_the_iterator_and_the_shaping():
    translation = asyncio.run(translated.translate_request(route(max_tokens=20, tools=TOOLS), MESSAGES, stream=True))
    assert translation.body["stream"] is True and anthropic_refusal(translation.body) is None

    async def lines():
        for event in anthropic_stream(translation.body, 1, 3):
            for line in event.data.decode().splitlines():
                if line.startswith("data:"):
                    yield line

    async def read() -> list:
        response = SimpleNamespace(release=lambda: None, close=lambda: None)
        iterator = translated.stream_iterator(translation, lines())
        return [chunk async for chunk in translated.shaped_chunks(iterator, translation.model, response, route())]

    chunks = asyncio.run(read())
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.tool_calls[0].function.name
    assert "".join(c.choices[0].delta.tool_calls[0].function.arguments for c in [first, *middle]) == (
        '{"location": "Paris"}'
    )  # fmt: skip
    assert finish.choices[0].finish_reason == "tool_calls"
    assert usage.choices == [] and usage.usage.total_tokens > 0
    assert len({chunk.id for chunk in chunks}) == 1 and {chunk.model for chunk in chunks} == {"claude-x"}
