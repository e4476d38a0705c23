"""The translated path: LiteLLM's provider configuration translates, the gateway's own pooled session carries.

For a provider whose wire is not OpenAI's but whose LiteLLM configuration is verified here
(routing.providers.TRANSLATED_PROVIDERS: Anthropic), a chat request skips `litellm.acompletion` (its logging object,
thread hops, cost calculation and stream wrapper) and calls LiteLLM where the translation happens, as its own HTTP
handler does
(litellm/llms/anthropic/chat/handler.py AnthropicChatCompletion.completion, and
litellm/llms/custom_httpx/llm_http_handler.py BaseLLMHTTPHandler.completion for the generic configurations):

    get_supported_openai_params (once per model) + map_openai_params (OpenAI params → the provider's)
    → validate_environment (headers) → the URL → (async_)transform_request (OpenAI request → provider body)
    → api.relay's pooled session (retries before an answer, the provider's status as the client's error)
    → transform_response (provider answer → ModelResponse), or the provider's stream iterator per event.

Nothing of the provider's format is written here: the small glue is the part of LiteLLM's stream wrapper a caller
sees (one role on the first chunk, empty chunks dropped, the finish reason in a chunk of its own at the end, then
the usage chunk), so that the chat adapter's LiteLLM reader (api.endpoints.chat.litellm_events) serves both paths.

A request with a field outside TRANSLATED_FIELDS (response_format, reasoning_effort, thinking, …: LiteLLM's
acompletion pre-processes those before the configuration sees them) stays on acompletion, as do models with
`use_litellm` (the operator asked for LiteLLM's own call) and every model when LLMPROXY_TRANSLATED_PATH or
LLMPROXY_DIRECT_RELAY is off. tests/api/test_translated_interface.py fails loudly when a LiteLLM upgrade changes
the interface used here.
"""

import inspect
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from api.accounting import RequestAccount
from api.errors import GatewayError
from api.provider import litellm_module, provider_api_key
from api.provider_errors import map_provider_exception
from api.relay import (
    EventLineTooLong,
    end_response,
    error_body,
    next_data_line,
    opening,
    relay,
    sse_lines,
    transport_error,
)
from routing.providers import TRANSLATED_PROVIDERS
from routing.resolver import Route

# Request fields whose translation is the configuration's alone (tests/e2e/test_translated_parity.py compares them
# with acompletion's); any other field sends the request through acompletion.
TRANSLATED_FIELDS = frozenset(
    {
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "user", "tools", "tool_choice",
        "parallel_tool_calls", "stream_options",
    }
)  # fmt: skip
ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com/v1/messages"


def model_translated(model: Any) -> bool:
    """The model's chat requests take the translated path (when their fields allow: `translates`)."""
    return (
        settings.LLMPROXY_DIRECT_RELAY
        and settings.LLMPROXY_TRANSLATED_PATH
        and model.provider in TRANSLATED_PROVIDERS
        and not model.use_litellm
    )


def translates(route: Route) -> bool:
    """The request's fields are all ones the configuration alone translates (TRANSLATED_FIELDS) and that LiteLLM
    says the model supports (else acompletion refuses them, in its words)."""
    return (
        model_translated(route.model)
        and not route.extra_body
        and TRANSLATED_FIELDS.issuperset(route.params)
        and supported_params(route.model.provider, route.model.provider_model).issuperset(route.params)
    )


@cache
def supported_params(provider: str, model: str) -> frozenset[str]:
    """LiteLLM's list of the OpenAI parameters a model takes: a function of the model alone, asked once per model
    (LiteLLM looks the model up in its catalogue on every call: 0.2 ms)."""
    from litellm.utils import PROVIDER_UNVALIDATED_PARAMS  # user, stream_options, …: taken from every caller

    return frozenset(provider_config(provider, model).get_supported_openai_params(model) or ()).union(
        PROVIDER_UNVALIDATED_PARAMS
    )


class NoLogging:
    """What the configurations call on LiteLLM's logging object (pre_call/post_call), doing nothing: the gateway
    keeps its own account of the call."""

    model_call_details: dict[str, Any] = {}

    def pre_call(self, *args: Any, **kwargs: Any) -> None:
        pass

    def post_call(self, *args: Any, **kwargs: Any) -> None:
        pass


NO_LOGGING = NoLogging()


@cache
def provider_config(provider: str, model: str) -> Any:
    litellm = litellm_module()
    config = litellm.ProviderConfigManager.get_provider_chat_config(
        model=model, provider=litellm.LlmProviders(provider)
    )
    if config is None:
        raise LookupError(f"LiteLLM has no chat configuration for {provider}/{model}")
    return config


@dataclass
class Translation:
    """One request in the provider's terms, and what reading its answer needs."""

    config: Any
    model: str
    messages: list[Any]
    optional_params: dict[str, Any]
    litellm_params: dict[str, Any]
    json_mode: bool
    api_key: str | None
    url: str
    headers: dict[str, str]
    body: dict[str, Any]


def provider_url(route: Route) -> str:
    """Where LiteLLM's acompletion would post (litellm.main._complete_anthropic, the step before its handler)."""
    from litellm.litellm_core_utils.url_utils import ensure_api_route

    litellm = litellm_module()
    base = (route.model.api_base or litellm.api_base or os.environ.get("ANTHROPIC_API_BASE")
            or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_DEFAULT_URL)  # fmt: skip
    if os.environ.get("LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX", "").lower() in ("1", "true", "yes"):
        return base
    return ensure_api_route(base, "v1/messages")


async def translate_request(route: Route, messages: list[Any], *, stream: bool) -> Translation:
    """The provider's request for this chat request, exactly as LiteLLM's acompletion would build it."""
    from litellm.anthropic_beta_gated_fields import strip_beta_gated_request_body
    from litellm.anthropic_beta_headers_manager import update_request_with_filtered_beta

    model = route.model
    provider = model.provider or ""
    name = model.provider_model
    config = provider_config(provider, name)
    api_key = provider_api_key(route)
    # A copy, as LiteLLM's handler takes one: the caller's messages serve the next attempt and the usage estimate.
    messages = list(config.translate_developer_role_to_system_role(
        orjson.loads(orjson.dumps(messages)), model=name, custom_llm_provider=provider, api_base=model.api_base,
        model_info=None))  # fmt: skip
    # What litellm.utils.get_optional_params does for these fields once `translates` checked them against the
    # model's supported parameters: the configuration's own mapping.
    params = {key: value for key, value in route.params.items() if value is not None}
    if stream:
        params["stream"] = True
        params["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
    optional = dict(config.map_openai_params(non_default_params=params, optional_params={}, model=name,
                                             drop_params=False))  # fmt: skip
    optional.pop("stream", None)
    json_mode = bool(optional.pop("json_mode", False))
    url = config.get_complete_url(api_base=provider_url(route), api_key=api_key, model=name,
                                  optional_params=optional, litellm_params={}, stream=stream)  # fmt: skip
    litellm_params: dict[str, Any] = {"api_base": url, "custom_llm_provider": provider, "drop_params": None}
    transform_params = {**optional, "is_vertex_request": False}
    headers = config.validate_environment(api_key=api_key, headers={}, model=name, messages=messages,
                                          optional_params=transform_params, litellm_params=litellm_params,
                                          api_base=url)  # fmt: skip
    transform = config.transform_request if text_only(messages) else config.async_transform_request
    body = transform(model=name, messages=messages, optional_params=transform_params, litellm_params=litellm_params,
                     headers=headers)  # fmt: skip
    if inspect.isawaitable(body):
        body = await body
    headers, body = update_request_with_filtered_beta(headers=headers, request_data=body, provider=provider,
                                                      api_base=url)  # fmt: skip
    body = dict(strip_beta_gated_request_body(body, headers, drop_params=None, model=name, provider=provider))
    if stream:
        body["stream"] = True
    return Translation(config, name, messages, optional, litellm_params, json_mode, api_key, url,
                       {key: str(value) for key, value in headers.items()}, body)  # fmt: skip


def text_only(messages: list[Any]) -> bool:
    """No part to fetch or inline (images, files): the async transform, which fetches those, adds nothing then."""
    return all(
        isinstance(message.get("content"), str | None)
        or all(isinstance(part, dict) and part.get("type") == "text" for part in message["content"])
        for message in messages
    )


async def send(route: Route, translation: Translation, account: RequestAccount, *,
               stream: bool) -> aiohttp.ClientResponse:  # fmt: skip
    async def refusal(response: aiohttp.ClientResponse, route: Route) -> GatewayError:
        """The provider's error status and body through LiteLLM's error class and mapping, as acompletion's."""
        raw = await error_body(response)
        error = translation.config.get_error_class(error_message=raw.decode("utf-8", "replace"),
                                                   status_code=response.status, headers=response.headers)  # fmt: skip
        return provider_failure(error, route)

    return await relay.post(route, "", translation.body, account, "", stream=stream, url=translation.url,
                            headers=translation.headers, status_error=refusal)  # fmt: skip


async def complete(route: Route, messages: list[Any], account: RequestAccount) -> Any:
    """The provider's whole answer as LiteLLM's ModelResponse."""
    import httpx

    litellm = litellm_module()
    translation = await translating(route, messages, stream=False)
    response = await send(route, translation, account, stream=False)
    headers = dict(response.headers)
    raw, _ = await relay.read_json(response, route, account)
    model_response = litellm.ModelResponse()
    model_response.usage = litellm.Usage()
    try:
        return translation.config.transform_response(
            model=translation.model, raw_response=httpx.Response(200, content=raw, headers=headers),
            model_response=model_response, logging_obj=NO_LOGGING, api_key=translation.api_key,
            request_data=translation.body, messages=translation.messages, optional_params=translation.optional_params,
            litellm_params=translation.litellm_params, encoding=None, json_mode=translation.json_mode,
        )  # fmt: skip
    except Exception as exc:
        raise provider_failure(exc, route) from None


async def open_chunks(route: Route, messages: list[Any], account: RequestAccount) -> AsyncIterator[Any]:
    """The provider's stream as OpenAI chunks (ModelResponseStream), opened up to its first chunk so that an early
    failure gets a real HTTP status. Closing the iterator closes the provider's stream."""
    translation = await translating(route, messages, stream=True)
    response = await send(route, translation, account, stream=True)
    lines = sse_lines(response.content, settings.LLMPROXY_MAX_SSE_LINE_BYTES)
    chunks = shaped_chunks(stream_iterator(translation, data_lines(lines)), translation.model, response, route)
    first = await opening(anext(chunks, None), response, route)
    account.provider_done()
    return prepend(first, chunks)


async def translating(route: Route, messages: list[Any], *, stream: bool) -> Translation:
    try:
        return await translate_request(route, messages, stream=stream)
    except GatewayError:
        raise
    except Exception as exc:  # LiteLLM's own refusals (unsupported parameters, …), as acompletion raises them
        raise provider_failure(exc, route) from None


async def data_lines(lines: AsyncIterator[bytes]) -> AsyncIterator[str]:
    while (line := await next_data_line(lines)) is not None:
        yield line.decode()


def stream_iterator(translation: Translation, lines: AsyncIterator[str]) -> Any:
    """The configuration's stream iterator (Anthropic's lives beside its handler, as LiteLLM's handler builds it)."""
    if translation.config.custom_llm_provider in (None, "anthropic"):
        from litellm.llms.anthropic.chat.handler import ModelResponseIterator
        from litellm.llms.anthropic.chat.transformation import ANTHROPIC_TOOL_NAME_REVERSE_MAP_KEY, JsonModeRequest

        optional = translation.optional_params
        return ModelResponseIterator(
            streaming_response=lines, sync_stream=False, json_mode=translation.json_mode, speed=optional.get("speed"),
            tool_name_reverse_map=translation.litellm_params.get(ANTHROPIC_TOOL_NAME_REVERSE_MAP_KEY),
            response_format_schema=(
                JsonModeRequest.model_validate(optional).tool_schema() if translation.json_mode else None
            ),
        )  # fmt: skip
    return translation.config.get_model_response_iterator_for_request(
        streaming_response=lines, sync_stream=False, json_mode=translation.json_mode,
        optional_params=translation.optional_params, logging_obj=NO_LOGGING,
    )  # fmt: skip


async def shaped_chunks(iterator: Any, model: str, response: aiohttp.ClientResponse,
                        route: Route) -> AsyncIterator[Any]:  # fmt: skip
    """The iterator's chunks as LiteLLM's stream wrapper hands them to a caller (see the module docstring)."""
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

    finished = False
    first: Any = None
    usage: Any = None
    finish_reason: str | None = None
    try:
        try:
            async for chunk in iterator:
                if not isinstance(chunk, ModelResponseStream):
                    continue
                usage = getattr(chunk, "usage", None) or usage
                choice = chunk.choices[0] if chunk.choices else None
                if choice is None:
                    continue
                finish_reason = choice.finish_reason or finish_reason
                if not carries_content(choice.delta):
                    continue
                if first is None:
                    first = chunk
                    choice.delta.role = "assistant"
                elif choice.delta.role is not None:
                    choice.delta.role = None
                if choice.finish_reason is not None:
                    choice.finish_reason = None
                yield same_stream(chunk, first, model, without_usage=True)
        except (TimeoutError, aiohttp.ClientError, EventLineTooLong):
            raise
        except Exception as exc:
            raise provider_failure(exc, route) from None
        finished = True
        if finish_reason is not None:
            ending = ModelResponseStream(choices=[StreamingChoices(finish_reason=finish_reason, delta=Delta())])
            yield same_stream(ending, first, model)
        if usage is not None:
            yield same_stream(ModelResponseStream(choices=[], usage=usage), first, model)
    finally:
        end_response(response, complete=finished)


def carries_content(delta: Any) -> bool:
    return bool(
        delta.content or delta.tool_calls or getattr(delta, "function_call", None)
        or getattr(delta, "reasoning_content", None) or getattr(delta, "thinking_blocks", None)
        or getattr(delta, "provider_specific_fields", None) or getattr(delta, "annotations", None)
    )  # fmt: skip


def same_stream(chunk: Any, first: Any, model: str, *, without_usage: bool = False) -> Any:
    """One id, one `created` and the model's name across the stream (the first chunk's), as the wrapper keeps them."""
    # Each only when it differs: a pydantic assignment costs more than the comparison.
    if first is not None and chunk is not first:
        if chunk.id != first.id:
            chunk.id = first.id
        if chunk.created != first.created:
            chunk.created = first.created
    if chunk.model != model:
        chunk.model = model
    if without_usage and getattr(chunk, "usage", None) is not None:
        chunk.usage = None
    return chunk


async def prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        if first is not None:
            yield first
            async for item in rest:
                yield item
    finally:
        await rest.aclose()


def provider_failure(exc: Exception, route: Route) -> GatewayError:
    """A failure inside the translation as acompletion reports it: LiteLLM's exception mapping, then the gateway's."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, (TimeoutError, aiohttp.ClientError, EventLineTooLong)):
        return transport_error(exc, route)
    from litellm.litellm_core_utils.exception_mapping_utils import exception_type

    try:
        exception_type(model=route.model.provider_model, original_exception=exc,
                       custom_llm_provider=route.model.provider)  # fmt: skip
    except Exception as mapped:
        return map_provider_exception(mapped, model=route.requested_model)
    return map_provider_exception(exc, model=route.requested_model)


def stream_failure(route: Route) -> Callable[[Exception], GatewayError]:
    return lambda exc: provider_failure(exc, route)
