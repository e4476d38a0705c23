"""POST /v1/responses: the Responses API adapter of the request pipeline (api/pipeline.py).

Its schema is api/endpoints/responses_request.py; the cap applies to `max_output_tokens`; usage comes from the
response object, or from the stream's final `response.completed` / `response.incomplete` / `response.failed` event;
errors are OpenAI's, and a stream that fails after it started ends with an `error` event (responses_events.py).

Paths. OpenAI itself and OpenAI-compatible servers at an api_base (provider `openai`, and `hosted_vllm`) serve
`/responses`: the request is relayed to `{api_base}/responses` and the provider's bytes are forwarded, its typed
events as sent. Every other provider (Anthropic, a generic `openai_like` server, …) and every `use_litellm` model goes
through `litellm.aresponses`, which calls OpenAI-wire Responses servers natively and bridges the others to their
chat API; its answer is reduced to OpenAI's fields and its events written as server-sent events here.

State. The provider's stored responses belong to the gateway's one provider account, shared by every key, so
`previous_response_id`, `conversation` and `item_reference` inputs are refused (responses_request.py). `store` is
forwarded on the relay and on LiteLLM's OpenAI path (the provider keeps the response, as OpenAI does by default; the
gateway never reads it back); LiteLLM's bridge drops it (nothing is stored).
"""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from django.conf import settings
from django.http import HttpResponse

from api.accounting import RequestAccount
from api.endpoints.responses_events import (
    ERROR_EVENT,
    FAILED_EVENT,
    TERMINAL_EVENTS,
    StreamFailure,
    account_usage,
    delivered_deltas,
    dumped,
    error_event,
    event_blocks,
    event_fields,
    openai_event,
    openai_response,
    sse_event,
)
from api.endpoints.responses_request import (
    ResponsesRequest,
    input_texts,
    parse_responses_request,
    unparsable_arguments,
)
from api.errors import GatewayError, scrub
from api.pipeline import Endpoint, event_stream
from api.provider import call, close_quietly, first_item, litellm_arguments, relay_api_key, uses_direct_relay
from api.provider_errors import INVALID_ANSWER_MESSAGE, error_for_status, map_provider_exception
from api.relay import end_response, opening, relay, sse_lines, transport_error
from routing.resolver import DEFAULT_OUTPUT_RESERVATION, MESSAGE_OVERHEAD_TOKENS, NON_TEXT_PART_TOKENS, Route
from usage.cost import estimate_tokens
from usage.models import EndReason

PATH = "/responses"  # below the provider's api_base
RELAYED_PROVIDERS = frozenset({"openai", "hosted_vllm"})  # their servers serve /responses (LiteLLM calls them so too)
UNFINISHED_MESSAGE = "the stream ended before its final response event"


class ResponsesEndpoint(Endpoint):
    name = "responses"
    path = "/v1/responses"
    token_fields = ("max_output_tokens",)

    def parse(self, body: bytes) -> ResponsesRequest:
        return parse_responses_request(body)

    def reservation(self, route: Route, request: ResponsesRequest) -> int:
        texts, other_parts = input_texts(request)
        prompt = sum(map(len, texts)) // 4 + other_parts * NON_TEXT_PART_TOKENS + MESSAGE_OVERHEAD_TOKENS * len(texts)
        return (route.params.get("max_output_tokens") or DEFAULT_OUTPUT_RESERVATION) + prompt

    def estimate_prompt_tokens(self, litellm_model: str, request: ResponsesRequest) -> int:
        texts, other_parts = input_texts(request)
        return estimate_tokens(litellm_model, text="\n".join(texts)) + other_parts * NON_TEXT_PART_TOKENS

    def relays(self, route: Route) -> bool:
        return uses_direct_relay(route) and route.model.provider in RELAYED_PROVIDERS

    def stream_error_event(self, error: GatewayError) -> bytes:
        return error_event(error)

    async def relay(self, route: Route, request: ResponsesRequest, account: RequestAccount) -> HttpResponse:
        api_key = relay_api_key(route)
        if request.stream:
            return await self._relay_stream(route, request, account, api_key)
        response = await relay.post(route, PATH, provider_body(route, request), account, api_key, stream=False)
        raw, data = await relay.read_json(response, route, account)
        if not isinstance(data, dict) or not isinstance(data.get("output"), list):
            raise error_for_status(502, "the provider's answer is not a response", model=route.requested_model)
        account.set_usage(account_usage(data.get("usage")))
        return HttpResponse(raw, content_type="application/json")

    async def _relay_stream(self, route: Route, request: ResponsesRequest, account: RequestAccount,
                            api_key: str) -> HttpResponse:  # fmt: skip
        response = await relay.post(route, PATH, provider_body(route, request), account, api_key, stream=True)
        blocks = event_blocks(sse_lines(response.content, settings.LLMPROXY_MAX_SSE_LINE_BYTES))
        first = await opening(anext(blocks, None), response, route, check=lambda event: first_event_check(event, route))
        account.provider_done()
        account.first_byte()
        events = relayed_events(first, blocks, response, route=route, account=account)
        return event_stream(events, account=account, endpoint=self, failure=lambda exc: transport_error(exc, route))

    async def via_litellm(self, route: Route, request: ResponsesRequest, account: RequestAccount) -> HttpResponse:
        refusal = None if route.model.provider in RELAYED_PROVIDERS else unparsable_arguments(request)
        if refusal is not None:
            raise refusal
        arguments = litellm_arguments(route, {"input": [] if request.input is None else request.input})
        if not request.stream:
            response = await call("aresponses", route, account, arguments)
            account.provider_done()
            if not hasattr(response, "model_dump"):
                raise error_for_status(502, "the provider's answer is not a response", model=route.requested_model)
            account.set_usage(account_usage(getattr(response, "usage", None)))
            return HttpResponse(orjson.dumps(openai_response(dumped(response))), content_type="application/json")
        arguments["stream"] = True
        events = await call("aresponses", route, account, arguments)
        first = await first_item(events, route)
        account.provider_done()
        if first is None:
            raise error_for_status(502, UNFINISHED_MESSAGE, model=route.requested_model)
        account.first_byte()
        events = litellm_events(first, events, route=route, account=account)
        return event_stream(events, account=account, endpoint=self,
                            failure=lambda exc: map_provider_exception(exc, model=route.requested_model))  # fmt: skip


RESPONSES = ResponsesEndpoint()


def provider_body(route: Route, request: ResponsesRequest) -> dict[str, Any]:
    body: dict[str, Any] = {**route.params, **route.extra_body, "model": route.model.provider_model}
    if request.input is not None:
        body["input"] = request.input
    if request.stream:
        body["stream"] = True
    return body


def first_event_check(first: bytes | None, route: Route) -> None:
    """A stream that is empty, starts with an error or is not JSON fails with an HTTP status of its own."""
    if first is None:
        raise error_for_status(502, UNFINISHED_MESSAGE, model=route.requested_model)
    name, data = event_fields(first)
    parsed = loads(data)
    if parsed is None and data != b"[DONE]":
        raise error_for_status(502, INVALID_ANSWER_MESSAGE, model=route.requested_model)
    if name == ERROR_EVENT:
        raise provider_failure(parsed, route)


def loads(data: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def provider_failure(error: Any, route: Route) -> GatewayError:
    """The provider's own error (an `error` event, or a failed response's `error`) as the account's failure."""
    message = error.get("message") if isinstance(error, dict) else None
    return error_for_status(502, scrub(str(message or "no message"))[:2000], model=route.requested_model)


def settle(kind: str, data: dict[str, Any], account: RequestAccount, route: Route) -> dict[str, Any]:
    """Account for a final or error event (its usage, its failure); returns the event to send (messages scrubbed)."""
    if kind == ERROR_EVENT:
        account.fail(provider_failure(data, route), rejected=False)
        if isinstance(data.get("message"), str):
            data = {**data, "message": scrub(data["message"])}
        return data
    response = data.get("response")
    response = response if isinstance(response, dict) else {}
    account.set_usage(account_usage(response.get("usage")))
    if kind == FAILED_EVENT and account.end_reason == EndReason.COMPLETED:  # else an error event said why
        account.fail(provider_failure(response.get("error"), route), rejected=False)
    return data


async def relayed_events(first: bytes, blocks: AsyncIterator[bytes], response: aiohttp.ClientResponse, *,
                         route: Route, account: RequestAccount) -> AsyncIterator[bytes]:  # fmt: skip
    """The provider's events as sent; the final one read for usage, an error event scrubbed and accounted."""
    sent = 0
    deltas: list[bytes] = []
    ended = finished = False
    try:
        block: bytes | None = first
        while block is not None:
            kind, data = event_fields(block)
            if kind in TERMINAL_EVENTS or kind == ERROR_EVENT:
                ended = True
                parsed = loads(data)
                if parsed is None:
                    raise error_for_status(502, INVALID_ANSWER_MESSAGE, model=route.requested_model)
                settled = settle(kind, parsed, account, route)
                block = block if settled is parsed else sse_event(kind, settled)
            elif kind.endswith(".delta"):
                deltas.append(data)
            elif data == b"[DONE]":
                ended = True
            yield block
            sent += 1
            block = await anext(blocks, None)
        if not ended:
            raise error_for_status(502, UNFINISHED_MESSAGE, model=route.requested_model)
        finished = True
    except GatewayError as error:
        raise StreamFailure(error, sent) from None
    except Exception as exc:
        raise StreamFailure(transport_error(exc, route), sent) from None
    finally:
        end_response(response, complete=finished)
        if account.prompt_tokens is None:
            account.delivered_text.extend(delivered_deltas(deltas))


async def litellm_events(first: Any, events: Any, *, route: Route, account: RequestAccount) -> AsyncIterator[bytes]:
    """LiteLLM's events as OpenAI's server-sent events; the final one read for usage."""
    sent = 0
    ended = False
    try:
        iterator = aiter(events)
        event = first
        while event is not None:
            data = openai_event(dumped(event))
            kind = str(data.get("type") or "")
            if kind in TERMINAL_EVENTS or kind == ERROR_EVENT:
                ended = True
                data = settle(kind, data, account, route)
            elif kind.endswith(".delta") and isinstance(data.get("delta"), str):
                account.delivered_text.append(data["delta"])
            yield sse_event(kind, data)
            sent += 1
            event = await anext(iterator, None)
        if not ended:
            raise error_for_status(502, UNFINISHED_MESSAGE, model=route.requested_model)
    except GatewayError as error:
        raise StreamFailure(error, sent) from None
    except Exception as exc:
        raise StreamFailure(map_provider_exception(exc, model=route.requested_model), sent) from None
    finally:
        await close_quietly(events)
