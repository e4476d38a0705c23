"""The one module that calls LiteLLM."""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from api.accounting import RequestAccount, generated_texts
from api.errors import GatewayError, sse_error_event
from api.openai_shape import chunk_event, completion_body
from api.provider_errors import map_provider_exception
from api.relay import api_base_missing, relay
from api.relay import provider_key as relay_provider_key
from api.schemas import ChatRequest
from routing.provider_keys import provider_key_var_refusal
from routing.providers import OPENAI_WIRE_PROVIDERS, needs_api_base, relayable
from routing.resolver import Route

logger = logging.getLogger(__name__)


PLACEHOLDER_API_KEY = "llmproxy-no-key"
# LiteLLM silently drops `user` for OpenAI-compatible models outside OpenAI's catalog; send it in the body.
# LiteLLM has no chat route for "openai_like": an OpenAI-compatible server at an api_base is its "custom_openai".
LITELLM_PROVIDER_NAMES = {"openai_like": "custom_openai"}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE_EVENT = b"data: [DONE]\n\n"


@cache
def litellm_module() -> Any:
    """LiteLLM, imported on first use (3-4 s) so that management commands stay quick."""
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def relayed(model: Any) -> bool:
    """OpenAI itself, or an OpenAI-wire server with its own api_base (routing.providers.relayable)."""
    return settings.LLMPROXY_DIRECT_RELAY and relayable(model.provider, model.api_base) and not model.use_litellm


async def warm_up(gateway: Any) -> None:
    """Load the policy, and LiteLLM (3-4 s, ~150 MiB) only when some model needs it; a relay-only worker never does."""
    try:
        snapshot = await gateway.policy.current()
    except Exception:  # no database yet: the first request will load the policy
        logger.warning("could not load the policy at start-up", exc_info=True)
        return
    if any(not relayed(model) for model in snapshot.models.values()):
        litellm_module()


def provider_api_key(route: Route) -> str | None:
    """The provider key for a route. A model with its own api_base never inherits a default provider key."""
    model = route.model
    if model.api_key_env:
        refusal = provider_key_var_refusal(model.api_key_env)  # checked again here: a row may bypass the admin
        value = None if refusal else os.environ.get(model.api_key_env)
        if not value:
            problem = refusal or f"environment variable {model.api_key_env} is not set"
            logger.error("no provider key for model %s: %s", model.name, problem)
            raise GatewayError(
                502,
                f"The gateway has no provider credentials for model '{model.name}'. Tell the gateway's operator.",
                type="api_error",
                code="provider_not_configured",
                from_provider=True,
            )
        return value
    return PLACEHOLDER_API_KEY if model.api_base else None


def completion_arguments(route: Route, chat: ChatRequest, *, stream: bool) -> dict[str, Any]:
    model = route.model
    if needs_api_base(model.provider) and not model.api_base:
        raise api_base_missing(route)  # LiteLLM would fall back to OpenAI's host (or an environment variable)
    arguments: dict[str, Any] = dict(route.params)
    arguments.update(
        model=model.provider_model,
        custom_llm_provider=LITELLM_PROVIDER_NAMES.get(model.provider or "", model.provider),
        messages=chat.messages,
        api_key=provider_api_key(route),
        timeout=model.timeout_seconds,
        num_retries=model.num_retries,
        max_retries=0,
    )
    if model.api_base:
        arguments["api_base"] = model.api_base
    arguments.update(provider_extra_arguments(route, arguments))
    if stream:
        arguments["stream"] = True
    return arguments


def provider_extra_arguments(route: Route, arguments: dict[str, Any]) -> dict[str, Any]:
    """Request fields outside OpenAI's set, where the provider takes them (the resolver refused the others).

    OpenAI-wire providers: in the body, through the OpenAI SDK's extra_body. Others (Anthropic): as keyword
    arguments, which LiteLLM copies into the provider body as top-level fields: only the provider's allowlist, never
    a caller's arbitrary keyword (LiteLLM reads some, like api_base, as its own: the CVE-2024-6587 pattern).
    """
    model = route.model
    accepted = model.extra_fields
    if accepted is not None:
        return {name: value for name, value in route.extra_body.items() if name in accepted}
    extra_body = dict(route.extra_body)
    if model.provider in OPENAI_WIRE_PROVIDERS and "user" in arguments:
        extra_body["user"] = arguments.pop("user")
    return {"extra_body": extra_body} if extra_body else {}


def uses_direct_relay(route: Route) -> bool:
    return relayed(route.model)


def relay_api_key(route: Route) -> str:
    key = relay_provider_key(route, provider_api_key(route))
    if key is None:
        logger.error("no provider key for model %s: set OPENAI_API_KEY or name a variable", route.model.name)
        raise GatewayError(
            502,
            f"The gateway has no provider credentials for model '{route.model.name}'. Tell the gateway's operator.",
            type="api_error",
            code="provider_not_configured",
            from_provider=True,
        )
    return key


async def complete(route: Route, chat: ChatRequest, account: RequestAccount) -> HttpResponse:
    if uses_direct_relay(route):
        return await relay.complete(route, chat, account, relay_api_key(route))
    arguments = completion_arguments(route, chat, stream=False)
    account.provider_started()
    try:
        response = await litellm_module().acompletion(**arguments)
    except Exception as exc:
        raise map_provider_exception(exc, model=route.requested_model) from None
    account.provider_done()
    account.set_usage(getattr(response, "usage", None))
    return HttpResponse(completion_body(response), content_type="application/json")


async def stream(route: Route, chat: ChatRequest, account: RequestAccount) -> StreamingHttpResponse:
    """Open the provider stream and wait for its first chunk, so early failures get a real HTTP status."""
    client_wants_usage = bool((route.params.get("stream_options") or {}).get("include_usage"))
    if uses_direct_relay(route):
        return await relay.stream(route, chat, account, relay_api_key(route), client_wants_usage)
    arguments = completion_arguments(route, chat, stream=True)
    arguments["stream_options"] = {**(arguments.get("stream_options") or {}), "include_usage": True}
    account.provider_started()
    try:
        chunks = await litellm_module().acompletion(**arguments)
    except Exception as exc:
        raise map_provider_exception(exc, model=route.requested_model) from None
    try:
        first = await anext(aiter(chunks))
    except StopAsyncIteration:
        first = None
    except BaseException as exc:
        await close_quietly(chunks)
        if isinstance(exc, Exception):
            raise map_provider_exception(exc, model=route.requested_model) from None
        raise
    account.provider_done()
    account.first_byte()
    events = relay_events(first, chunks, model=route.requested_model, account=account, forward_usage=client_wants_usage)
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    for name, value in SSE_HEADERS.items():
        response[name] = value
    # If the client is gone before the body starts, the generator never runs: account for it on close.
    response._resource_closers.append(account.finish_threadsafe)
    return response


def _note_chunk(chunk: Any, account: RequestAccount) -> None:
    for choice in chunk.choices:
        account.delivered_text.extend(generated_texts(getattr(choice, "delta", None)))


async def relay_events(first: Any, chunks: Any, *, model: str, account: RequestAccount,
                       forward_usage: bool) -> AsyncIterator[bytes]:  # fmt: skip
    try:
        if first is not None:
            chunk = first
            iterator = aiter(chunks)
            while True:
                usage = getattr(chunk, "usage", None)
                if usage:
                    account.set_usage(usage)
                if chunk.choices:
                    _note_chunk(chunk, account)
                    yield chunk_event(chunk, without_usage=bool(usage) and not forward_usage)
                elif not usage or forward_usage:
                    yield chunk_event(chunk)
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
        yield DONE_EVENT
    except asyncio.CancelledError:
        account.disconnected()
        raise
    except Exception as exc:
        error = map_provider_exception(exc, model=model)
        account.fail(error, rejected=False)
        yield sse_error_event(error)
    finally:
        await close_quietly(chunks)
        account.finish()


async def close_quietly(chunks: Any) -> None:
    """Close the provider stream, releasing its connection (the client went away or we are done)."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except BaseException as exc:  # closing a broken stream may raise; the request is over either way
        if isinstance(exc, asyncio.CancelledError):
            raise
        logger.debug("closing provider stream failed: %s", type(exc).__name__)
