"""One request pipeline for every endpoint; what differs per endpoint lives in a small adapter.

    authenticate → parse → resolve → admit → call (deployments, failover: api.failover) → answer or stream → account

`handle(request, endpoint)` runs these steps for any adapter. The pipeline owns what is the same everywhere: the
key (gateway.identify), the policy (routing.resolver: alias, allowed models, key and team allowlists, refused fields,
the model's output cap applied to the endpoint's token fields), admission (usage.limits: key limits in one atomic
step, 429), the choice of path (the direct relay for OpenAI-wire providers, LiteLLM otherwise), the request's
account (api.accounting: one usage row and the limit settlement, exactly once, also on errors, disconnects and
abandoned streams), the overhead and rate-limit headers, and turning exceptions into the endpoint's error shape.

An adapter is a subclass of `Endpoint` (api/endpoints/<name>.py) that knows only its endpoint:

    name: str                      RequestLog.endpoint: "chat", "embeddings", "responses" or "messages"
    path: str                      "/v1/embeddings" (api.edge refuses oversized bodies on it with a row)
    token_fields: tuple[str, ...]  the request fields the model's output cap applies to, e.g. ("max_output_tokens",);
                                   () for none. The first one is added with the cap when the caller sent none (chat:
                                   the model's own field, max_tokens or max_completion_tokens)
    credentials(request) -> str | None         the caller's key (default: `Authorization: Bearer …`)
    parse(body: bytes) -> ParsedRequest        validated request, or GatewayError(400, param=…) naming the field;
                                               api.schemas has the shared JSON loading and control-field refusal
    parse_request(request) -> ParsedRequest    the same from the whole request (default: parse(request.body)), for
                                               an endpoint that forwards request headers (messages: anthropic-beta)
    reservation(route, parsed) -> int          tokens-per-minute held at admission (the prompt estimate plus what
                                               the answer may produce: routing.resolver.token_reservation)
    estimate_prompt_tokens(litellm_model, parsed) -> int   the prompt when the provider reported no usage
    relays(route) -> bool                      direct relay or LiteLLM (default: api.provider.uses_direct_relay)
    translates(route) -> bool                  not relayed, but LiteLLM's provider configuration translates it over
                                               the relay's session (default: False; chat: api.translated.translates)
    async relay(route, parsed, account) -> HttpResponse        the direct call (api.relay: post, read_json,
                                                               open_stream, sse_lines; api.provider.relay_api_key)
    async translated(route, parsed, account) -> HttpResponse   the translated call (api/translated.py)
    async via_litellm(route, parsed, account) -> HttpResponse  the LiteLLM call (api.provider.litellm_arguments,
                                                               api.provider.call, api.provider.first_item)
    error_body(error) -> bytes / stream_error_event(error) -> bytes   the error shape (default OpenAI's)

ParsedRequest is any object with `model: str`, `stream: bool`, `params: dict` (fields the resolver checks and caps,
sent to the provider) and `extra_body: dict` (other fields, checked against what the provider accepts), plus what
the endpoint itself needs (messages, input, …).

Both calls tell the account when the provider call starts and answers (`account.provider_started()`,
`account.provider_done()`), record usage (`account.set_usage(usage)`: OpenAI's or LiteLLM's usage block; an
adapter whose usage has other names converts it to those first), and return an HttpResponse. A stream returns
`event_stream(events, account=…, endpoint=…, failure=…)` after `account.first_byte()`: `events` yields the bytes
to send and raises on a provider failure (a GatewayError, or any exception that `failure` maps to one); the
pipeline sends the endpoint's error event, notes a disconnect and finishes the account however the stream ends.

Adding an endpoint: write its adapter, add it to api/endpoints/__init__.py, add its one-line view to api/api.py.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from api.accounting import RequestAccount
from api.errors import REJECTIONS, GatewayError, as_gateway_error, body_too_large, scrub, sse_error_event
from api.failover import call_with_failover
from api.gateway import gateway
from api.provider import uses_direct_relay
from keys.lookup import KeyRecord
from routing.resolver import Route, resolve
from telemetry import tracing
from usage.limits import LimitExceeded, LimitHold, limited_subjects

logger = logging.getLogger(__name__)

OVERHEAD_HEADER = "x-llmproxy-overhead-ms"  # time spent in the gateway, excluding the provider
ATTEMPTS_HEADER = "x-llmproxy-attempts"  # provider calls made: 1 when nothing failed, 0 when none was made
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ParsedRequest(Protocol):
    model: str
    stream: bool
    params: dict[str, Any]
    extra_body: dict[str, Any]


class Endpoint:
    """An endpoint's adapter (see the module docstring). Subclasses set name, path and token_fields."""

    name: str = ""
    path: str = ""
    token_fields: tuple[str, ...] = ()

    def credentials(self, request: HttpRequest) -> str | None:
        return bearer_token(request)

    def parse(self, body: bytes) -> ParsedRequest:
        raise NotImplementedError

    def parse_request(self, request: HttpRequest) -> ParsedRequest:
        return self.parse(request.body)

    def reservation(self, route: Route, parsed: Any) -> int:
        raise NotImplementedError

    def estimate_prompt_tokens(self, litellm_model: str, parsed: Any) -> int:
        return 0

    def relays(self, route: Route) -> bool:
        return uses_direct_relay(route)

    async def relay(self, route: Route, parsed: Any, account: RequestAccount) -> HttpResponse:
        raise NotImplementedError

    def translates(self, route: Route) -> bool:
        return False

    async def translated(self, route: Route, parsed: Any, account: RequestAccount) -> HttpResponse:
        raise NotImplementedError

    async def via_litellm(self, route: Route, parsed: Any, account: RequestAccount) -> HttpResponse:
        raise NotImplementedError

    def call_for(self, route: Route) -> tuple[str, Any]:
        """The path this route takes ("relay", "translated" or "litellm") and the adapter's call for it."""
        if self.relays(route):
            return "relay", self.relay
        if self.translates(route):
            return "translated", self.translated
        return "litellm", self.via_litellm

    def error_body(self, error: GatewayError) -> bytes:
        return orjson.dumps(error.as_dict())

    def stream_error_event(self, error: GatewayError) -> bytes:
        return sse_error_event(error)

    def error_response(self, error: GatewayError) -> HttpResponse:
        response = HttpResponse(self.error_body(error), status=error.status, content_type="application/json")
        for name, value in error.headers.items():
            response[name] = value
        return response


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def handle(request: HttpRequest, endpoint: Endpoint) -> HttpResponse:
    """The whole request for any endpoint: its answer (or error), its headers, its account."""
    account = RequestAccount(gateway, endpoint)
    if tracing.ENABLED:
        account.trace_span = tracing.start_request(
            request.headers, **{"llmproxy.endpoint": endpoint.name, "llmproxy.request_id": account.request_id}
        )
    try:
        response = await answer(request, endpoint, account)
    except asyncio.CancelledError:  # the client went away while we waited for the provider
        account.disconnected()
        account.finish()
        raise
    except Exception as exc:
        error = as_gateway_error(exc) if isinstance(exc, REJECTIONS) else unexpected_failure(exc)
        account.fail(error, rejected=not error.from_provider and error.status < 500)
        account.finish()
        if account.limit_hold is not None:
            error.headers = {**account.limit_hold.headers, **error.headers}
        response = endpoint.error_response(error)
        response[OVERHEAD_HEADER] = f"{account.overhead_ms():.2f}"
        response[ATTEMPTS_HEADER] = str(account.attempts)
        return response
    if not account.streamed:
        account.finish()
    response[OVERHEAD_HEADER] = f"{account.overhead_ms():.2f}"
    response[ATTEMPTS_HEADER] = str(account.attempts)
    if account.limit_hold is not None:
        for name, value in account.limit_hold.headers.items():
            response[name] = value
    return response


async def answer(request: HttpRequest, endpoint: Endpoint, account: RequestAccount) -> HttpResponse:
    caller = await gateway.identify(endpoint.credentials(request))
    account.api_key = caller.key
    parsed = endpoint.parse_request(request)
    account.requested_model, account.streamed, account.request = parsed.model, parsed.stream, parsed
    route = resolve(caller.policy, requested_model=parsed.model, params=parsed.params, extra=parsed.extra_body,
                    allowlist=caller.key.allowed_models, team_allowlist=caller.key.team_allowlist,
                    token_fields=endpoint.token_fields)  # fmt: skip
    account.route = route
    account.limit_hold = await admit(caller.key, endpoint.reservation(route, parsed), account.trace_span)
    return await call_with_failover(
        endpoint, route, parsed, account, snapshot=caller.policy, health=gateway.health, load=gateway.load
    )


async def admit(key: KeyRecord, reservation: int, trace_span: Any) -> LimitHold | None:
    """Every limit of the key and its team in one atomic step (usage.limits), as llmproxy.admission when traced."""
    if trace_span is None:
        return await gateway.limits.admit(key, token_reservation=reservation)
    with tracing.span("llmproxy.admission", trace_span, **{"llmproxy.limits": applied_limits(key)}) as span:
        try:
            hold = await gateway.limits.admit(key, token_reservation=reservation)
        except LimitExceeded:
            span.set_attribute("llmproxy.refused", True)
            raise
        span.set_attribute("llmproxy.refused", False)
        return hold


def applied_limits(key: KeyRecord) -> list[str]:
    """The limits an admission checks, as "key.rpm", "team.budget", …"""
    return [f"{label}.{name}" for label, record in limited_subjects(key)
            for name, limit in (("rpm", record.rpm_limit), ("tpm", record.tpm_limit), ("budget", record.max_budget_usd))
            if limit is not None]  # fmt: skip


def event_stream(events: AsyncIterator[bytes], *, account: RequestAccount, endpoint: Endpoint,
                 failure: Callable[[Exception], GatewayError]) -> StreamingHttpResponse:  # fmt: skip
    """The streaming answer: `events` as sent, a failure as the endpoint's error event, the account finished."""
    response = StreamingHttpResponse(
        accounted_events(events, account=account, endpoint=endpoint, failure=failure), content_type="text/event-stream"
    )
    for name, value in SSE_HEADERS.items():
        response[name] = value
    # If the client is gone before the body starts, the generator never runs: account for it on close.
    response._resource_closers.append(account.finish_threadsafe)
    return response


async def accounted_events(events: AsyncIterator[bytes], *, account: RequestAccount, endpoint: Endpoint,
                           failure: Callable[[Exception], GatewayError]) -> AsyncIterator[bytes]:  # fmt: skip
    try:
        async for event in events:
            yield event
    except asyncio.CancelledError:
        account.disconnected()
        raise
    except Exception as exc:  # escaping, it would skip every handler and cut the body: end with an error event
        error = exc if isinstance(exc, GatewayError) else failure(exc)
        account.fail(error, rejected=False)
        yield endpoint.stream_error_event(error)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()  # the adapter's own clean-up (closing the provider stream) runs before the account's
        account.finish()


def unexpected_failure(exc: Exception) -> GatewayError:
    if isinstance(exc, RequestDataTooBig):  # api.edge refuses these first; Django's own check is the fallback
        return body_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, DatabaseError):
        logger.error("database unavailable: %s", scrub(str(exc)))
        return GatewayError(503, "The gateway's database is unavailable; try again shortly.", type="api_error",
                            code="database_unavailable", headers={"Retry-After": "1"})  # fmt: skip
    logger.exception("unexpected error")
    return GatewayError(500, "The gateway failed unexpectedly.", type="api_error", code="internal_error")
