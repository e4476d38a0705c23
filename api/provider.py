"""The one module that calls LiteLLM."""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

from api.errors import GatewayError, sse_error_event
from api.provider_errors import map_provider_exception
from api.schemas import ChatRequest
from routing.providers import provider_model_name
from routing.resolver import Route

logger = logging.getLogger(__name__)


PLACEHOLDER_API_KEY = "llmproxy-no-key"
# LiteLLM silently drops `user` for OpenAI-compatible models outside OpenAI's catalog; send it in the body.
OPENAI_WIRE_PROVIDERS = frozenset({"openai", "hosted_vllm", "openai_like", "custom_openai"})
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE_EVENT = b"data: [DONE]\n\n"


@cache
def litellm_module() -> Any:
    """LiteLLM, imported on first use (3-4 s) so that management commands stay quick."""
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def provider_api_key(route: Route) -> str | None:
    """The provider key for a route. A model with its own api_base never inherits a default provider key."""
    model = route.model
    if model.api_key_env:
        value = os.environ.get(model.api_key_env)
        if not value:
            logger.error("environment variable %s (provider key of model %s) is not set", model.api_key_env, model.name)
            raise GatewayError(
                502,
                f"The gateway has no provider credentials for model '{model.name}'. Tell the gateway's operator.",
                type="api_error",
                code="provider_not_configured",
            )
        return value
    return PLACEHOLDER_API_KEY if model.api_base else None


def completion_arguments(route: Route, chat: ChatRequest, *, stream: bool) -> dict[str, Any]:
    model = route.model
    arguments: dict[str, Any] = dict(route.params)
    arguments.update(
        model=provider_model_name(model.litellm_model, model.provider or ""),
        custom_llm_provider=model.provider,
        messages=chat.messages,
        api_key=provider_api_key(route),
        timeout=model.timeout_seconds,
        num_retries=model.num_retries,
        max_retries=0,
    )
    if model.api_base:
        arguments["api_base"] = model.api_base
    extra_body = dict(chat.extra_body)
    if model.provider in OPENAI_WIRE_PROVIDERS and "user" in arguments:
        extra_body["user"] = arguments.pop("user")
    if extra_body:
        arguments["extra_body"] = extra_body
    if stream:
        arguments["stream"] = True
    return arguments


async def complete(route: Route, chat: ChatRequest) -> HttpResponse:
    try:
        response = await litellm_module().acompletion(**completion_arguments(route, chat, stream=False))
    except GatewayError:
        raise
    except Exception as exc:
        raise map_provider_exception(exc, model=route.requested_model) from None
    body = response.model_dump_json(exclude_none=True)
    return HttpResponse(body, content_type="application/json")


def encode_chunk(chunk: Any) -> bytes:
    return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"


async def stream(route: Route, chat: ChatRequest) -> StreamingHttpResponse:
    """Open the provider stream and wait for its first chunk, so early failures get a real HTTP status."""
    try:
        chunks = await litellm_module().acompletion(**completion_arguments(route, chat, stream=True))
    except GatewayError:
        raise
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
    response = StreamingHttpResponse(
        relay_events(first, chunks, model=route.requested_model), content_type="text/event-stream"
    )
    for name, value in SSE_HEADERS.items():
        response[name] = value
    return response


async def relay_events(first: Any, chunks: Any, *, model: str) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield encode_chunk(first)
            async for chunk in chunks:
                yield encode_chunk(chunk)
        yield DONE_EVENT
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        yield sse_error_event(map_provider_exception(exc, model=model))
    finally:
        await close_quietly(chunks)


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
