"""The direct relay to Anthropic's own Messages API: its URL, its headers, its key, its event stream's frames.

The transport is api/relay.py's (one pooled session, retries before an answer, the provider's status as the client's
error); only what differs from an OpenAI-wire provider lives here. The caller's `anthropic-version` (else a fixed
default) and `anthropic-beta` headers are sent on; the key is the model's provider key, never the caller's.
"""

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from django.conf import settings

from api.accounting import RequestAccount
from api.provider import provider_api_key
from api.provider_errors import no_credentials
from api.relay import relay, sse_lines
from routing.resolver import Route

ANTHROPIC_DEFAULT_BASE = "https://api.anthropic.com"
ANTHROPIC_KEY_VARIABLE = "ANTHROPIC_API_KEY"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"  # the version every Anthropic model accepts (LiteLLM sends it too)


def messages_url(route: Route) -> str:
    """`{api_base}/v1/messages`; a base that already ends in /v1 is not doubled."""
    base = (route.model.api_base or ANTHROPIC_DEFAULT_BASE).rstrip("/")
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def anthropic_api_key(route: Route) -> str:
    """The model's named key variable, else ANTHROPIC_API_KEY; a model with its own api_base never inherits it."""
    key = provider_api_key(route)  # raises when the named variable is refused or unset
    if key is None:
        key = os.environ.get(ANTHROPIC_KEY_VARIABLE)
    if not key:
        raise no_credentials(route.model.name)
    return key


def provider_headers(route: Route, *, version: str | None, beta: str | None) -> dict[str, str]:
    headers = {
        "x-api-key": anthropic_api_key(route),
        "anthropic-version": version or DEFAULT_ANTHROPIC_VERSION,
        "Content-Type": "application/json",
    }
    if beta:
        headers["anthropic-beta"] = beta
    return headers


async def post_messages(route: Route, body: dict[str, Any], account: RequestAccount, *, stream: bool,
                        version: str | None, beta: str | None) -> aiohttp.ClientResponse:  # fmt: skip
    """POST the body to the model's Messages URL: a 200 answer unread, any other status raised as a GatewayError."""
    headers = provider_headers(route, version=version, beta=beta)
    return await relay.post(route, "/v1/messages", body, account, "", stream=stream, url=messages_url(route),
                            headers=headers)  # fmt: skip


async def event_frames(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The provider's server-sent events as sent, one whole event (its lines and the blank line after) at a time."""
    frame = bytearray()
    async for line in sse_lines(response.content, settings.LLMPROXY_MAX_SSE_LINE_BYTES):
        frame += line
        if not line.strip():
            if frame.strip():
                yield bytes(frame)
            frame.clear()
    if frame.strip():  # the stream ended without the blank line
        yield bytes(frame).rstrip(b"\r\n") + b"\n\n"
