"""The direct relay: for providers whose wire format IS OpenAI's, forward the request and the provider's bytes.

One shared pooled aiohttp session per event loop; the provider's JSON body and SSE lines reach the client as the
provider sent them. Only the usage (and error events) are parsed. Everything else (Anthropic, Bedrock, Vertex, …)
and any model whose `use_litellm` is set go through LiteLLM (api/provider.py). Both paths are held to the same
end-to-end suite.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from api.accounting import RequestAccount, generated_texts
from api.errors import GatewayError, scrub, sse_error_event
from api.provider_errors import (
    CONNECTION_LOST_MESSAGE,
    INVALID_ANSWER_MESSAGE,
    error_for_status,
    provider_timeout,
    provider_unreachable,
)
from api.schemas import ChatRequest
from routing.provider_keys import is_allowed_provider_key_var
from routing.resolver import Route

logger = logging.getLogger(__name__)

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DONE_LINE = b"data: [DONE]"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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

    async def complete(self, route: Route, chat: ChatRequest, account: RequestAccount, api_key: str) -> HttpResponse:
        response = await self._send(route, chat, account, api_key, stream=False)
        try:
            raw = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, route) from None
        finally:
            response.release()
        account.provider_done()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise error_for_status(502, INVALID_ANSWER_MESSAGE, model=route.requested_model) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise error_for_status(502, "the provider's answer is not a chat completion", model=route.requested_model)
        account.set_usage(data.get("usage"))
        return HttpResponse(raw, content_type="application/json")

    async def stream(self, route: Route, chat: ChatRequest, account: RequestAccount, api_key: str,
                     wants_usage: bool) -> StreamingHttpResponse:  # fmt: skip
        response = await self._send(route, chat, account, api_key, stream=True)
        lines = sse_lines(response.content, settings.LLMPROXY_MAX_SSE_LINE_BYTES)
        try:
            first = await _next_data_line(lines)
        except BaseException as exc:
            response.close()
            if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, EventLineTooLong)):
                raise _transport_error(exc, route) from None
            raise
        account.provider_done()
        if first is not None and first.startswith(b'data: {"error"'):
            response.close()
            raise _stream_error(first, route)
        if first is not None and first != DONE_LINE and not _is_json(first[5:]):  # one parse per stream
            response.close()
            raise error_for_status(502, INVALID_ANSWER_MESSAGE, model=route.requested_model)
        account.first_byte()
        events = relay_lines(first, lines, response, route=route, account=account, wants_usage=wants_usage)
        streaming = StreamingHttpResponse(events, content_type="text/event-stream")
        for name, value in SSE_HEADERS.items():
            streaming[name] = value
        streaming._resource_closers.append(account.finish_threadsafe)
        return streaming

    async def _send(self, route: Route, chat: ChatRequest, account: RequestAccount, api_key: str,
                    *, stream: bool) -> aiohttp.ClientResponse:  # fmt: skip
        model = route.model
        body: dict[str, Any] = {**route.params, **route.extra_body}
        body["model"] = model.provider_model
        body["messages"] = chat.messages
        if stream:
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        url = provider_url(route)
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
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
                raise _transport_error(exc, route) from None
            if response.status == 200:
                return response
            if response.status in RETRYABLE_STATUSES and attempt < model.num_retries:
                response.release()
                attempt += 1
                await asyncio.sleep(min(2.0, 0.25 * 2**attempt))
                continue
            raise await _status_error(response, route)


def provider_url(route: Route) -> str:
    """OpenAI's host only for OpenAI's own models: a self-hosted model's prompt never goes there."""
    model = route.model
    if not model.api_base and model.provider != "openai":
        raise api_base_missing(route)
    return (model.api_base or OPENAI_DEFAULT_BASE).rstrip("/") + "/chat/completions"


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


async def _next_data_line(lines: AsyncIterator[bytes]) -> bytes | None:
    async for line in lines:
        line = line.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            return line
    return None


async def relay_lines(first: bytes | None, lines: AsyncIterator[bytes], response: aiohttp.ClientResponse, *,
                      route: Route, account: RequestAccount, wants_usage: bool) -> AsyncIterator[bytes]:  # fmt: skip
    forwarded: list[bytes] = []
    finished_normally = False
    try:
        line = first
        while line is not None:
            if line == DONE_LINE:
                yield b"data: [DONE]\n\n"
                finished_normally = True
                break
            if line.startswith(b'data: {"error"'):
                error = _stream_error(line, route)
                account.fail(error, rejected=False)
                yield sse_error_event(error)
                break
            if b'"usage"' in line and b'"usage":null' not in line and b'"usage": null' not in line:
                chunk = orjson.loads(line[5:])
                account.set_usage(chunk.get("usage"))
                if not chunk.get("choices") and not wants_usage:
                    line = await _next_data_line(lines)
                    continue
            forwarded.append(line)
            yield line + b"\n\n"
            line = await _next_data_line(lines)
        else:
            error = error_for_status(502, "the stream ended without [DONE]", model=route.requested_model)
            account.fail(error, rejected=False)
            yield sse_error_event(error)
    except asyncio.CancelledError:
        account.disconnected()
        raise
    except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError, EventLineTooLong) as exc:
        error = _transport_error(exc, route)
        account.fail(error, rejected=False)
        yield sse_error_event(error)
    finally:
        if finished_normally:
            response.release()
        else:
            response.close()  # drop the provider connection: the provider stops generating
        if account.prompt_tokens is None:
            account.delivered_text.extend(_delivered_text(forwarded))
        account.finish()


def _is_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def _delivered_text(lines: list[bytes]) -> list[str]:
    """Every text already sent, tool calls and reasoning included (parsed only to estimate missing usage)."""
    texts = []
    for line in lines:
        try:
            chunk = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            continue
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                texts += generated_texts(choice.get("delta"))
    return texts


def _transport_error(exc: BaseException, route: Route) -> GatewayError:
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


async def _status_error(response: aiohttp.ClientResponse, route: Route) -> GatewayError:
    try:
        raw = await response.read()
    except (TimeoutError, aiohttp.ClientError):
        raw = b""
    finally:
        response.release()
    return error_for_status(response.status, _error_message(raw), model=route.requested_model,
                            retry_after=response.headers.get("Retry-After"))  # fmt: skip


def _stream_error(line: bytes, route: Route) -> GatewayError:
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
