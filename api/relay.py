"""The direct relay's transport: for providers whose wire format IS OpenAI's, post the request, hand back the bytes.

One shared pooled aiohttp session per event loop; the provider's JSON body and SSE lines reach the client as the
provider sent them. Each endpoint's adapter (api/endpoints/) builds its body, names its path (`/chat/completions`,
`/embeddings`, …) and reads only what it must (usage, error events). Everything else (Anthropic, Bedrock, Vertex, …)
and any model whose `use_litellm` is set go through LiteLLM (api/provider.py). Both paths are held to the same
end-to-end suite.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import orjson
from django.conf import settings

from api.accounting import RequestAccount
from api.errors import GatewayError, scrub
from api.provider_errors import (
    CONNECTION_LOST_MESSAGE,
    INVALID_ANSWER_MESSAGE,
    error_for_status,
    provider_timeout,
    provider_unreachable,
)
from routing.provider_keys import is_allowed_provider_key_var
from routing.resolver import Route

logger = logging.getLogger(__name__)
T = TypeVar("T")

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

StatusError = Callable[[aiohttp.ClientResponse, Route], Awaitable[GatewayError]]  # a refusal, read
OpenStream = tuple[aiohttp.ClientResponse, AsyncIterator[bytes], bytes | None]  # response, its lines, the first data


class Relay:
    def __init__(self) -> None:
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
            session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
                                            auto_decompress=True, skip_auto_headers=("User-Agent",))  # fmt: skip
            self._sessions[loop] = session
        return session

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()

    async def post(self, route: Route, path: str, body: dict[str, Any], account: RequestAccount, api_key: str, *,
                   stream: bool, url: str | None = None, headers: dict[str, str] | None = None,
                   status_error: StatusError | None = None) -> aiohttp.ClientResponse:  # fmt: skip
        """POST `body` to the model's `{api_base}{path}`; retried (num_retries) before an answer only. A 200 answer
        is returned unread; any other status is raised as the client's GatewayError (`status_error` reads it when
        given). A provider with another wire (Anthropic's native API) passes its own `url` and `headers` (then
        `api_key` is not sent by this method)."""
        model = route.model
        url = url or provider_url(route, path)
        headers = headers or {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        seconds = model.timeout_seconds
        timeout = aiohttp.ClientTimeout(total=None if stream else seconds, sock_connect=seconds, sock_read=seconds)
        payload = orjson.dumps(body)
        account.provider_started()
        attempt = 0
        while True:
            try:
                response = await self.session().post(url, data=payload, headers=headers, timeout=timeout)
            except (TimeoutError, aiohttp.ClientError) as exc:
                if attempt < model.num_retries:
                    attempt += 1
                    await asyncio.sleep(min(2.0, 0.25 * 2**attempt))
                    continue
                raise transport_error(exc, route) from None
            if response.status == 200:
                return response
            if response.status in RETRYABLE_STATUSES and attempt < model.num_retries:
                response.release()
                attempt += 1
                await asyncio.sleep(min(2.0, 0.25 * 2**attempt))
                continue
            raise await (status_error or _status_error)(response, route)

    async def read_json(self, response: aiohttp.ClientResponse, route: Route,
                        account: RequestAccount) -> tuple[bytes, Any]:  # fmt: skip
        """The whole answer, as sent and parsed (invalid JSON is a 502)."""
        try:
            raw = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(exc, route) from None
        finally:
            response.release()
        account.provider_done()
        try:
            return raw, orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise error_for_status(502, INVALID_ANSWER_MESSAGE, model=route.requested_model) from None

    async def open_stream(self, route: Route, path: str, body: dict[str, Any], account: RequestAccount,
                          api_key: str) -> OpenStream:  # fmt: skip
        """POST a streaming request and read up to its first `data:` line (None: the stream had none), so that early
        failures get a real HTTP status. Returns the response, its remaining lines and that first line."""
        response = await self.post(route, path, body, account, api_key, stream=True)
        lines = sse_lines(response.content, settings.LLMPROXY_MAX_SSE_LINE_BYTES)
        first = await opening(next_data_line(lines), response, route)
        account.provider_done()
        return response, lines, first


def end_response(response: aiohttp.ClientResponse, *, complete: bool) -> None:
    """Give the connection back to the pool after a complete answer; otherwise drop it, so the provider stops
    generating."""
    if complete:
        response.release()
    else:
        response.close()


async def opening(read: Awaitable[T], response: aiohttp.ClientResponse, route: Route,
                  check: Callable[[T], None] | None = None) -> T:  # fmt: skip
    """The first item of a provider stream (and `check` of it), read before the status line goes out so that an
    early failure gets a real HTTP status; on any failure the provider connection is dropped."""
    try:
        first = await read
        if check is not None:
            check(first)
    except BaseException as exc:
        response.close()
        if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, EventLineTooLong)):
            raise transport_error(exc, route) from None
        raise
    return first


def provider_url(route: Route, path: str) -> str:
    """OpenAI's host only for OpenAI's own models: a self-hosted model's prompt never goes there."""
    model = route.model
    if not model.api_base and model.provider != "openai":
        raise api_base_missing(route)
    return (model.api_base or OPENAI_DEFAULT_BASE).rstrip("/") + path


def api_base_missing(route: Route) -> GatewayError:
    logger.error("model %s (%s) has no api_base: not called", route.model.name, route.model.provider)
    return GatewayError(
        502,
        f"The model '{route.model.name}' is served by a self-hosted provider ({route.model.provider}) but has no "
        "API base configured. Tell the gateway's operator.",
        type="api_error",
        code="provider_not_configured",
        from_provider=True,
    )


class EventLineTooLong(Exception):
    """The provider sent one server-sent-event line longer than LLMPROXY_MAX_SSE_LINE_BYTES."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the provider sent an event line longer than {limit} bytes")


async def sse_lines(content: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    """The provider's lines, each whole up to `limit` bytes (aiohttp's own line reader stops far sooner)."""
    buffer = bytearray()
    async for data in content.iter_any():
        searched = len(buffer)  # no newline before this point
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", searched)) >= 0:
            if end - start > limit:
                raise EventLineTooLong(limit)
            yield bytes(buffer[start : end + 1])
            start = searched = end + 1
        del buffer[:start]
        if len(buffer) > limit:
            raise EventLineTooLong(limit)
    if buffer:
        yield bytes(buffer)


async def next_data_line(lines: AsyncIterator[bytes]) -> bytes | None:
    async for line in lines:
        line = line.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            return line
    return None


def transport_error(exc: BaseException, route: Route) -> GatewayError:
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return provider_timeout(route.requested_model)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return provider_unreachable(route.requested_model)
    if isinstance(exc, EventLineTooLong):
        logger.warning("provider stream for %s: %s", route.requested_model, exc)
        return error_for_status(502, str(exc), model=route.requested_model)
    logger.warning("provider transport failure for %s: %s", route.requested_model, type(exc).__name__)
    return error_for_status(502, CONNECTION_LOST_MESSAGE, model=route.requested_model)


def _error_message(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
        message = data["error"]["message"] if isinstance(data.get("error"), dict) else str(data.get("error"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        message = raw[:500].decode("utf-8", "replace") or "no message"
    return scrub(str(message))[:2000]


async def error_body(response: aiohttp.ClientResponse) -> bytes:
    """A refusal's body (empty if it cannot be read), the connection released either way."""
    try:
        return await response.read()
    except (TimeoutError, aiohttp.ClientError):
        return b""
    finally:
        response.release()


async def _status_error(response: aiohttp.ClientResponse, route: Route) -> GatewayError:
    raw = await error_body(response)
    return error_for_status(response.status, _error_message(raw), model=route.requested_model,
                            retry_after=response.headers.get("Retry-After"))  # fmt: skip


def stream_error(line: bytes, route: Route) -> GatewayError:
    return error_for_status(502, _error_message(line[5:].strip()), model=route.requested_model)


def provider_key(route: Route, configured: str | None) -> str | None:
    """The bearer token for the relay: the model's named variable, else OpenAI's default one (not for custom hosts)."""
    if route.model.api_key_env and not is_allowed_provider_key_var(route.model.api_key_env):
        logger.error("model %s: %s is not an allowed provider key variable", route.model.name, route.model.api_key_env)
        return None  # the caller answers 502 provider_not_configured
    if configured is not None:
        return configured
    return None if route.model.api_base else os.environ.get("OPENAI_API_KEY")


relay = Relay()
