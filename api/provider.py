"""The one module that calls LiteLLM: the arguments every call shares, the call itself, and the choice of path.

Each endpoint's adapter (api/endpoints/) adds its own payload and picks the LiteLLM function (acompletion,
aembedding, …); LiteLLM is imported on first use, so a worker that only relays never loads it.
"""

import asyncio
import logging
import os
from functools import cache
from typing import Any

from django.conf import settings

from api.accounting import RequestAccount
from api.provider_errors import map_provider_exception, no_credentials
from api.relay import api_base_missing
from api.relay import provider_key as relay_provider_key
from routing.provider_keys import provider_key_var_refusal
from routing.providers import OPENAI_WIRE_PROVIDERS, needs_api_base, relayable
from routing.resolver import Route

logger = logging.getLogger(__name__)


PLACEHOLDER_API_KEY = "llmproxy-no-key"
# LiteLLM silently drops `user` for OpenAI-compatible models outside OpenAI's catalog; send it in the body.
# LiteLLM has no chat route for "openai_like": an OpenAI-compatible server at an api_base is its "custom_openai".
LITELLM_PROVIDER_NAMES = {"openai_like": "custom_openai"}


@cache
def litellm_module() -> Any:
    """LiteLLM, imported on first use (3-4 s) so that management commands stay quick."""
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # /v1/messages for OpenAI models: LiteLLM's chat-completions adapter, not its Responses adapter (whose stream
    # imports LiteLLM's proxy server, absent here); other providers take that adapter anyway.
    litellm.use_chat_completions_url_for_anthropic_messages = True
    # LiteLLM's OpenAI embeddings call turns the max_retries=0 we pass into its default of 2 (`max_retries or
    # litellm.DEFAULT_MAX_RETRIES`), so the SDK would retry a failing deployment twice before failover could move on.
    litellm.DEFAULT_MAX_RETRIES = 0
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
            raise no_credentials(model.name)
        return value
    return PLACEHOLDER_API_KEY if model.api_base else None


def litellm_arguments(route: Route, payload: dict[str, Any],
                      provider_names: dict[str, str] = LITELLM_PROVIDER_NAMES) -> dict[str, Any]:  # fmt: skip
    """The keyword arguments of a LiteLLM call: the route's parameters, the endpoint's `payload` (messages, input,
    …), and what the gateway decides (provider, key, base, timeout, retries). Never a caller's control field.
    `provider_names`: LiteLLM's name for a provider where this endpoint's LiteLLM route differs from ours."""
    model = route.model
    if needs_api_base(model.provider) and not model.api_base:
        raise api_base_missing(route)  # LiteLLM would fall back to OpenAI's host (or an environment variable)
    arguments: dict[str, Any] = dict(route.params)
    arguments.update(
        model=model.provider_model,
        custom_llm_provider=provider_names.get(model.provider or "", model.provider),
        **payload,
        api_key=provider_api_key(route),
        timeout=model.timeout_seconds,
        num_retries=model.num_retries,
        max_retries=0,
    )
    if model.api_base:
        arguments["api_base"] = model.api_base
    arguments.update(provider_extra_arguments(route, arguments))
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
        raise no_credentials(route.model.name)
    return key


async def call(function: str, route: Route, account: RequestAccount, arguments: dict[str, Any]) -> Any:
    """`litellm.<function>(**arguments)` (acompletion, aembedding, …), its failure as the client's GatewayError."""
    account.provider_started()
    try:
        return await getattr(litellm_module(), function)(**arguments)
    except Exception as exc:
        raise map_provider_exception(exc, model=route.requested_model) from None


async def first_item(items: Any, route: Route) -> Any:
    """The first item of a LiteLLM stream (None: it was empty), so that early failures get a real HTTP status;
    the stream is closed if that fails."""
    try:
        return await anext(aiter(items))
    except StopAsyncIteration:
        return None
    except BaseException as exc:
        await close_quietly(items)
        if isinstance(exc, Exception):
            raise map_provider_exception(exc, model=route.requested_model) from None
        raise


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
