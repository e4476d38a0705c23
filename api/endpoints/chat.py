"""POST /v1/chat/completions: the Chat Completions adapter of the request pipeline (api/pipeline.py).

Its schema is api/schemas.py; the cap applies to max_tokens / max_completion_tokens; usage comes from the body, or
from the stream's usage chunk (always asked for; forwarded only when the client asked); errors are OpenAI's.
"""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from django.http import HttpResponse

from api import translated
from api.accounting import RequestAccount, generated_texts
from api.openai_shape import chunk_event, completion_body
from api.pipeline import Endpoint, event_stream
from api.provider import call, close_quietly, first_item, litellm_arguments, relay_api_key
from api.provider_errors import INVALID_ANSWER_MESSAGE, error_for_status, map_provider_exception
from api.relay import end_response, next_data_line, relay, stream_error, transport_error
from api.schemas import ChatRequest, parse_chat_request
from routing.resolver import TOKEN_LIMIT_FIELDS, Route, token_reservation
from usage.cost import estimate_tokens

PATH = "/chat/completions"  # below the provider's api_base
DONE_LINE = b"data: [DONE]"
DONE_EVENT = b"data: [DONE]\n\n"


class ChatEndpoint(Endpoint):
    name = "chat"
    path = "/v1/chat/completions"
    token_fields = TOKEN_LIMIT_FIELDS

    def parse(self, body: bytes) -> ChatRequest:
        return parse_chat_request(body)

    def reservation(self, route: Route, chat: ChatRequest) -> int:
        return token_reservation(route, chat.messages)

    def estimate_prompt_tokens(self, litellm_model: str, chat: ChatRequest) -> int:
        return estimate_tokens(litellm_model, messages=chat.messages) if chat.messages else 0

    async def relay(self, route: Route, chat: ChatRequest, account: RequestAccount) -> HttpResponse:
        api_key = relay_api_key(route)
        if chat.stream:
            return await self._relay_stream(route, chat, account, api_key)
        response = await relay.post(route, PATH, provider_body(route, chat, stream=False), account, api_key,
                                    stream=False)  # fmt: skip
        raw, data = await relay.read_json(response, route, account)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise error_for_status(502, "the provider's answer is not a chat completion", model=route.requested_model)
        account.set_usage(data.get("usage"))
        return HttpResponse(raw, content_type="application/json")

    async def _relay_stream(self, route: Route, chat: ChatRequest, account: RequestAccount,
                            api_key: str) -> HttpResponse:  # fmt: skip
        body = provider_body(route, chat, stream=True)
        response, lines, first = await relay.open_stream(route, PATH, body, account, api_key)
        if first is not None and first.startswith(b'data: {"error"'):
            response.close()
            raise stream_error(first, route)
        if first is not None and first != DONE_LINE and not is_json(first[5:]):  # one parse per stream
            response.close()
            raise error_for_status(502, INVALID_ANSWER_MESSAGE, model=route.requested_model)
        account.first_byte()
        events = relayed_lines(first, lines, response, route=route, account=account, wants_usage=wants_usage(route))
        return event_stream(events, account=account, endpoint=self, failure=lambda exc: transport_error(exc, route))

    def translates(self, route: Route) -> bool:
        return translated.translates(route)

    async def translated(self, route: Route, chat: ChatRequest, account: RequestAccount) -> HttpResponse:
        """LiteLLM's translation over the pooled session (api/translated.py); the same answer as via_litellm's."""
        if not chat.stream:
            response = await translated.complete(route, chat.messages, account)
            account.set_usage(getattr(response, "usage", None))
            return HttpResponse(completion_body(response), content_type="application/json")
        chunks = await translated.open_chunks(route, chat.messages, account)
        first = await anext(chunks, None)
        account.first_byte()
        events = litellm_events(first, chunks, account=account, forward_usage=wants_usage(route))
        return event_stream(events, account=account, endpoint=self, failure=translated.stream_failure(route))

    async def via_litellm(self, route: Route, chat: ChatRequest, account: RequestAccount) -> HttpResponse:
        arguments = litellm_arguments(route, {"messages": chat.messages})
        if not chat.stream:
            response = await call("acompletion", route, account, arguments)
            account.provider_done()
            account.set_usage(getattr(response, "usage", None))
            return HttpResponse(completion_body(response), content_type="application/json")
        arguments["stream"] = True
        arguments["stream_options"] = {**(arguments.get("stream_options") or {}), "include_usage": True}
        chunks = await call("acompletion", route, account, arguments)
        first = await first_item(chunks, route)
        account.provider_done()
        account.first_byte()
        events = litellm_events(first, chunks, account=account, forward_usage=wants_usage(route))
        return event_stream(events, account=account, endpoint=self,
                            failure=lambda exc: map_provider_exception(exc, model=route.requested_model))  # fmt: skip


CHAT = ChatEndpoint()


def wants_usage(route: Route) -> bool:
    return bool((route.params.get("stream_options") or {}).get("include_usage"))


def provider_body(route: Route, chat: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {**route.params, **route.extra_body}
    body["model"] = route.model.provider_model
    body["messages"] = chat.messages
    if stream:
        body["stream"] = True
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


async def relayed_lines(first: bytes | None, lines: AsyncIterator[bytes], response: aiohttp.ClientResponse, *,
                        route: Route, account: RequestAccount, wants_usage: bool) -> AsyncIterator[bytes]:  # fmt: skip
    """The provider's SSE lines as sent; its usage chunk read (and dropped unless the client asked for it)."""
    forwarded: list[bytes] = []
    finished_normally = False
    try:
        line = first
        while line is not None:
            if line == DONE_LINE:
                yield DONE_EVENT
                finished_normally = True
                return
            if line.startswith(b'data: {"error"'):
                raise stream_error(line, route)
            if b'"usage"' in line and b'"usage":null' not in line and b'"usage": null' not in line:
                chunk = orjson.loads(line[5:])
                account.set_usage(chunk.get("usage"))
                if not chunk.get("choices") and not wants_usage:
                    line = await next_data_line(lines)
                    continue
            forwarded.append(line)
            yield line + b"\n\n"
            line = await next_data_line(lines)
        raise error_for_status(502, "the stream ended without [DONE]", model=route.requested_model)
    finally:
        end_response(response, complete=finished_normally)
        if account.prompt_tokens is None:
            account.delivered_text.extend(delivered_text(forwarded))


async def litellm_events(first: Any, chunks: Any, *, account: RequestAccount,
                         forward_usage: bool) -> AsyncIterator[bytes]:  # fmt: skip
    """LiteLLM's chunks in OpenAI's shape; the usage chunk read (and dropped unless the client asked for it)."""
    try:
        if first is not None:
            chunk = first
            iterator = aiter(chunks)
            while True:
                usage = getattr(chunk, "usage", None)
                if usage:
                    account.set_usage(usage)
                if chunk.choices:
                    for choice in chunk.choices:
                        account.delivered_text.extend(generated_texts(getattr(choice, "delta", None)))
                    yield chunk_event(chunk, without_usage=bool(usage) and not forward_usage)
                elif not usage or forward_usage:
                    yield chunk_event(chunk)
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
        yield DONE_EVENT
    finally:
        await close_quietly(chunks)


def is_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def delivered_text(lines: list[bytes]) -> list[str]:
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
