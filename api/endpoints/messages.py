"""POST /v1/messages: Anthropic's Messages API, the Messages adapter of the request pipeline (api/pipeline.py).

- The key comes as `x-api-key` or `Authorization: Bearer` (Claude Code and the `anthropic` SDK send either).
- Schema: messages_schema.py. The model's cap applies to `max_tokens`; tokens-per-minute reserve the prompt estimate
  (system, messages, tool definitions) plus the capped `max_tokens`.
- Anthropic models (provider "anthropic") are relayed natively on both paths, whatever LLMPROXY_DIRECT_RELAY and
  use_litellm say (api/anthropic_relay.py): the body as sent with the provider's model id and the capped
  max_tokens, the provider's bytes forwarded. LiteLLM's own native Anthropic route is not used: its streaming
  imports LiteLLM's proxy server (fastapi), which a gateway install does not have.
- Every other model goes through LiteLLM's Anthropic adapter (`litellm.anthropic_messages`, told to use chat
  completions for OpenAI models too: api.provider.litellm_module), which translates the request and yields
  Anthropic's answer, or its event stream as ready frames. Only the fields it translates are sent; Anthropic's own
  server features (ANTHROPIC_ONLY_FIELDS) are left out, an unknown field is refused as Anthropic would refuse it,
  and what the model cannot take (thinking on a model without reasoning, top_k) is dropped.
- Usage: the answer's `usage`, or a stream's message_start (input and cache tokens) updated by its message_delta
  (output tokens). Errors are Anthropic-shaped (api/anthropic_shape.py), also in a stream (`event: error`).
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import orjson
from django.http import HttpRequest, HttpResponse

from api import anthropic_shape as shape
from api.accounting import RequestAccount
from api.anthropic_relay import event_frames, post_messages
from api.endpoints.messages_schema import MessagesRequest, parse_messages_request, prompt_estimate, prompt_texts
from api.errors import GatewayError, invalid_request
from api.pipeline import Endpoint, bearer_token, event_stream
from api.provider import call, close_quietly, first_item, litellm_arguments
from api.provider_errors import error_for_status, map_provider_exception
from api.relay import end_response, opening, relay, transport_error
from keys.lookup import InvalidApiKey
from routing.resolver import Route
from usage.cost import estimate_tokens

TRANSLATED_FIELDS = frozenset(
    {"max_tokens", "system", "stop_sequences", "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking"}
)
# Documented Messages fields (the `anthropic` SDK's) that only Anthropic's servers act on: left out when translating.
ANTHROPIC_ONLY_FIELDS = frozenset(
    {
        "metadata", "service_tier", "container", "context_management", "mcp_servers", "output_config",
        "inference_geo", "speed", "cache_control", "diagnostics", "compaction", "user_profile_id", "workspace_id",
        "billing_policy", "fallback_credit_token", "thread",
    }
)  # fmt: skip
NOT_A_MESSAGE = "the provider's answer is not a message"
Closer = Callable[[bool], Awaitable[None]]


class MessagesEndpoint(Endpoint):
    name = "messages"
    path = "/v1/messages"
    token_fields = ("max_tokens",)

    def credentials(self, request: HttpRequest) -> str | None:
        key = request.headers.get("x-api-key", "").strip() or bearer_token(request)
        if not key:
            raise InvalidApiKey("Missing API key: send 'x-api-key: llmp_…' or 'Authorization: Bearer llmp_…'.")
        return key

    def parse_request(self, request: HttpRequest) -> MessagesRequest:
        return parse_messages_request(request.body, request)

    def parse(self, body: bytes) -> MessagesRequest:
        return parse_messages_request(body)

    def reservation(self, route: Route, request: MessagesRequest) -> int:
        return route.params["max_tokens"] + prompt_estimate(request)

    def estimate_prompt_tokens(self, litellm_model: str, request: MessagesRequest) -> int:
        return estimate_tokens(litellm_model, text="\n".join(prompt_texts(request)[0]))

    def relays(self, route: Route) -> bool:
        return route.model.provider == "anthropic"

    def error_body(self, error: GatewayError) -> bytes:
        return shape.error_body(error)

    def stream_error_event(self, error: GatewayError) -> bytes:
        return shape.error_event(error)

    async def relay(self, route: Route, request: MessagesRequest, account: RequestAccount) -> HttpResponse:
        body: dict[str, Any] = {"model": route.model.provider_model, "messages": request.messages, **route.params}
        if request.stream:
            body["stream"] = True
        response = await post_messages(route, body, account, stream=request.stream,
                                       version=request.anthropic_version, beta=request.anthropic_beta)  # fmt: skip
        if request.stream:
            return await self._relay_stream(response, route, account)
        raw, data = await relay.read_json(response, route, account)
        if not isinstance(data, dict) or data.get("type") != "message":
            raise error_for_status(502, NOT_A_MESSAGE, model=route.requested_model)
        account.set_usage(shape.openai_named_usage(data.get("usage")))
        return HttpResponse(raw, content_type="application/json")

    async def _relay_stream(self, response: aiohttp.ClientResponse, route: Route,
                            account: RequestAccount) -> HttpResponse:  # fmt: skip
        frames = event_frames(response)
        first = await opening(anext(frames, None), response, route)
        account.provider_done()

        async def close(finished: bool) -> None:
            end_response(response, complete=finished)

        return await self._stream(first, frames, route, account, close, failure=relay_failure(route))

    async def via_litellm(self, route: Route, request: MessagesRequest, account: RequestAccount) -> HttpResponse:
        arguments = litellm_arguments(replace(route, params=translated_params(route)), {"messages": request.messages})
        arguments["drop_params"] = True
        if not request.stream:
            answer = await call("anthropic_messages", route, account, arguments)
            account.provider_done()
            if not isinstance(answer, dict):
                raise error_for_status(502, NOT_A_MESSAGE, model=route.requested_model)
            account.set_usage(shape.openai_named_usage(answer.get("usage")))
            return HttpResponse(orjson.dumps(answer, default=jsonable), content_type="application/json")
        arguments["stream"] = True
        frames = await call("anthropic_messages", route, account, arguments)
        first = await first_item(frames, route)
        account.provider_done()

        async def close(finished: bool) -> None:
            await close_quietly(frames)

        return await self._stream(first, frames, route, account, close, failure=litellm_failure(route))

    async def _stream(self, first: bytes | None, frames: AsyncIterator[bytes], route: Route, account: RequestAccount,
                      close: Closer, *, failure: Callable[[Exception], GatewayError]) -> HttpResponse:  # fmt: skip
        if first is not None and shape.frame_name(first) == b"error":  # failed before anything was sent
            await close(False)
            raise shape.stream_error(shape.frame_data(first), model=route.requested_model)
        account.first_byte()
        events = forwarded_events(first, frames, route=route, account=account, close=close)
        return event_stream(events, account=account, endpoint=self, failure=failure)


MESSAGES = MessagesEndpoint()


def relay_failure(route: Route) -> Callable[[Exception], GatewayError]:
    return lambda exc: transport_error(exc, route)


def litellm_failure(route: Route) -> Callable[[Exception], GatewayError]:
    return lambda exc: map_provider_exception(exc, model=route.requested_model)


def translated_params(route: Route) -> dict[str, Any]:
    """The fields LiteLLM's adapter translates; Anthropic-only features left out; an unknown field refused."""
    for name in route.params:
        if name not in TRANSLATED_FIELDS and name not in ANTHROPIC_ONLY_FIELDS:
            raise invalid_request(f"{name}: Extra inputs are not permitted", param=name)
    return {name: value for name, value in route.params.items() if name in TRANSLATED_FIELDS}


def jsonable(value: Any) -> Any:
    """What orjson cannot write itself in LiteLLM's answer (pydantic objects)."""
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise TypeError(f"not JSON: {type(value).__name__}")
    return dump(exclude_none=True)


async def forwarded_events(first: bytes | None, frames: AsyncIterator[bytes], *, route: Route,
                           account: RequestAccount, close: Closer) -> AsyncIterator[bytes]:  # fmt: skip
    """The event stream's frames as received; usage read from message_start and message_delta; an error event
    raised (the pipeline sends it in the gateway's words); a stream without message_stop is a failure."""
    start_usage: dict[str, Any] | None = None
    deltas: list[bytes] = []
    finished = False
    try:
        frame = first
        while frame is not None:
            name = shape.frame_name(frame)
            if name == b"error":
                raise shape.stream_error(shape.frame_data(frame), model=route.requested_model)
            if name == b"content_block_delta":
                deltas.append(frame)
            elif name == b"message_start":
                message = shape.frame_data(frame).get("message")
                start_usage = message.get("usage") if isinstance(message, dict) else None
            elif name == b"message_delta":
                usage = shape.merged_usage(start_usage, shape.frame_data(frame).get("usage"))
                account.set_usage(shape.openai_named_usage(usage))
            yield frame
            if name == b"message_stop":
                finished = True
                return
            frame = await anext(frames, None)
        raise error_for_status(502, "the stream ended before message_stop", model=route.requested_model)
    finally:
        await close(finished)
        if account.prompt_tokens is None:
            account.delivered_text.extend(shape.delivered_texts(deltas))
