"""One request's account: its usage-log row and its hold on the key's (and its team's) limits, finished exactly once.

The account knows which endpoint it serves (the adapter, api/pipeline.py) only for the row's `endpoint` and, when a
provider reported no usage, to estimate the prompt from the parsed request the adapter understands.
"""

import asyncio
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from api.errors import GatewayError
from keys.lookup import KeyRecord
from routing.resolver import Route
from telemetry import metrics, tracing
from telemetry.request_ids import current_request_id
from usage.cost import TokenUsage, cost_usd, estimate_tokens, token_usage
from usage.limits import LimitHold
from usage.models import EndReason

if TYPE_CHECKING:
    from api.gateway import Gateway
    from api.pipeline import Endpoint

logger = logging.getLogger(__name__)


class RequestAccount:
    __slots__ = (
        "_finished", "_loop", "_provider_answered", "_provider_ms", "_provider_started", "_started", "api_key",
        "attempts", "completion_tokens", "cost_usd", "created_at", "delivered_text", "end_reason", "endpoint",
        "error_code", "fallback_model", "gateway", "limit_hold", "prompt_tokens", "request", "request_id",
        "requested_model", "route", "status", "streamed", "trace_span", "ttft_ms", "usage", "usage_estimated",
    )  # fmt: skip

    def __init__(self, gateway: "Gateway", endpoint: "Endpoint") -> None:
        self.gateway = gateway
        self.endpoint = endpoint
        self.created_at = timezone.now()
        self._started = time.perf_counter()
        self._finished = False
        self._provider_started: float | None = None
        self._provider_ms = 0.0
        self._provider_answered = False
        self._loop = asyncio.get_running_loop()
        self.api_key: KeyRecord | None = None
        self.requested_model = ""
        self.route: Route | None = None
        self.request: Any = None  # the parsed request (the endpoint's own type), once parsed
        self.streamed = False
        self.status = 200
        self.error_code = ""
        self.end_reason = EndReason.COMPLETED
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.usage = TokenUsage()
        self.usage_estimated = False
        self.cost_usd: Decimal | None = None
        self.ttft_ms: float | None = None
        self.delivered_text: list[str] = []
        self.limit_hold: LimitHold | None = None
        self.attempts = 0  # provider calls made (api.failover)
        self.fallback_model = ""
        self.request_id = current_request_id()  # set at the ASGI edge (telemetry.request_ids)
        self.trace_span = None  # the request's span when tracing is on (api.pipeline starts it, finish() ends it)

    def attempt(self, route: Route) -> None:
        """A provider call to `route.model`'s deployment begins."""
        self.route = route
        self.attempts += 1

    def attempt_failed(self) -> None:
        """The attempt failed before answering: its wait counts as the provider's, not the gateway's overhead."""
        if self._provider_started is not None:
            self._provider_ms += (time.perf_counter() - self._provider_started) * 1000
            self._provider_started = None

    def provider_started(self) -> None:
        self._provider_started = time.perf_counter()

    def provider_done(self) -> None:
        """The provider answered (its whole body, or its first chunk for a stream)."""
        self._provider_answered = True
        if self._provider_started is not None:
            self._provider_ms += (time.perf_counter() - self._provider_started) * 1000
            self._provider_started = None

    def overhead_ms(self) -> float:
        """Time spent in the gateway so far, excluding the wait for the provider."""
        return max(0.0, (time.perf_counter() - self._started) * 1000 - self._provider_ms)

    def first_byte(self) -> None:
        self.ttft_ms = (time.perf_counter() - self._started) * 1000

    def set_usage(self, usage: Any) -> None:
        if not usage:
            return
        self.usage = token_usage(usage)
        self.prompt_tokens, self.completion_tokens = self.usage.prompt_tokens, self.usage.completion_tokens

    def fail(self, error: GatewayError, *, rejected: bool) -> None:
        self.status = error.status
        self.error_code = error.code or error.type
        if rejected:
            self.end_reason = EndReason.REJECTED
        elif error.status == 504:
            self.end_reason = EndReason.TIMEOUT
        else:
            self.end_reason = EndReason.PROVIDER_ERROR

    def disconnected(self) -> None:
        self.end_reason = EndReason.CLIENT_DISCONNECTED
        self.error_code = "client_disconnected"
        if not self.streamed:
            self.status = 499

    def _estimate_missing_usage(self) -> None:
        """Estimate what the provider will bill when it reported no usage.

        Only an answer the provider accepted is billed (its prompt and the text delivered so far): a refusal (an
        error status), a connection that never carried an answer and a timeout before the first byte cost nothing,
        as providers bill them. A call the client abandoned while the provider was working on it (no answer yet)
        is billed its prompt: the provider had it and bills what it processed, which the gateway cannot see.
        """
        if self.route is None or self.end_reason == EndReason.REJECTED or self.prompt_tokens is not None:
            return
        abandoned_in_flight = self._provider_started is not None and self.end_reason == EndReason.CLIENT_DISCONNECTED
        if not self._provider_answered and not abandoned_in_flight:
            return
        model = self.route.model.litellm_model
        self.prompt_tokens = 0 if self.request is None else self.endpoint.estimate_prompt_tokens(model, self.request)
        self.completion_tokens = estimate_tokens(model, text="".join(self.delivered_text))
        self.usage = TokenUsage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)
        self.usage_estimated = True

    def finish(self) -> None:
        """Record the row (no I/O) and settle the limit hold in the background. Idempotent."""
        if self._finished:
            return
        self._finished = True
        try:
            self._estimate_missing_usage()
            prompt, completion = self.prompt_tokens or 0, self.completion_tokens or 0
            if self.route is not None and (prompt or completion):
                model = self.route.model
                self.cost_usd = cost_usd(model.litellm_model, model.provider, self.usage)
            row = self.as_row()
            self.gateway.usage.record(row)
            if self.route is not None and self.route.model.tpm:
                self.gateway.load.note_tokens(self.route.model, prompt + completion)
            if self.limit_hold is not None:
                self.gateway.limits.settle_later(self.limit_hold, tokens_used=prompt + completion, cost=self.cost_usd)
            if self.trace_span is not None:
                self._end_trace(prompt, completion)
            if metrics.ENABLED:  # overhead up to the answer (a stream's first byte), as x-llmproxy-overhead-ms
                overhead = self.overhead_ms() if self.ttft_ms is None else max(0.0, self.ttft_ms - self._provider_ms)
                provider = (self.route.model.provider or "") if self.route else ""
                metrics.request_finished(row, provider=provider, overhead_ms=overhead)
        except Exception:  # accounting must never break the answer
            logger.exception("could not account for a request")

    def _end_trace(self, prompt: int, completion: int) -> None:
        model = self.route.model if self.route else None
        team = self.api_key.team if self.api_key else None
        tracing.end_request(
            self.trace_span,
            status=self.status,
            **{
                "gen_ai.request.model": self.requested_model[:200] or None,
                "llmproxy.model": model.name if model else None,
                "llmproxy.deployment": model.deployment if model else None,
                "llmproxy.fallback_model": self.fallback_model or None,
                "llmproxy.key": self.api_key.name if self.api_key else None,
                "llmproxy.team": team.name if team else None,
                "llmproxy.stream": self.streamed,
                "llmproxy.attempts": self.attempts,
                "llmproxy.end_reason": str(self.end_reason),
                "error.type": self.error_code or None,
                "gen_ai.usage.input_tokens": prompt,
                "gen_ai.usage.output_tokens": completion,
            },
        )

    def finish_threadsafe(self) -> None:
        """finish() from any thread (Django may close a response from a worker thread)."""
        if not self._finished:
            self._loop.call_soon_threadsafe(self.finish)

    def as_row(self) -> dict[str, Any]:
        model = self.route.model if self.route else None
        prompt, completion = self.prompt_tokens or 0, self.completion_tokens or 0
        team = self.api_key.team if self.api_key else None
        return {
            "created_at": self.created_at,
            "endpoint": self.endpoint.name,
            "api_key_id": self.api_key.id if self.api_key else None,
            "key_name": self.api_key.name if self.api_key else "",
            "team_id": team.id if team else None,
            "team_name": team.name if team else "",
            "requested_model": storable(self.requested_model)[:200],
            "resolved_model": model.name if model else "",
            "litellm_model": model.litellm_model if model else "",
            "streamed": self.streamed,
            "status": self.status,
            "error_code": self.error_code[:64],
            "end_reason": str(self.end_reason),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cache_read_tokens": self.usage.cache_read_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "usage_estimated": self.usage_estimated,
            "cost_usd": self.cost_usd,
            "latency_ms": round((time.perf_counter() - self._started) * 1000, 3),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 3),
            "deployment": model.deployment[:200] if model else "",
            "attempts": self.attempts,
            "fallback_model": self.fallback_model,
            "request_id": self.request_id,
        }


def storable(text: str) -> str:
    """A caller's text as every database stores it: PostgreSQL refuses NUL characters and lone surrogates."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _part(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def generated_texts(delta: Any) -> list[str]:
    """Every text a streamed delta generated (a dict from the relay, LiteLLM's Delta otherwise): content,
    reasoning, refusal, tool-call and function-call names and arguments, an audio transcript."""
    if delta is None:
        return []
    reasoning = _part(delta, "reasoning_content") or _part(delta, "reasoning")  # servers name it either way
    texts = [_part(delta, "content"), _part(delta, "refusal"), reasoning]
    calls = _part(delta, "tool_calls")
    functions = [_part(call, "function") for call in calls if call is not None] if isinstance(calls, list) else []
    for function in [*functions, _part(delta, "function_call")]:
        if function is not None:
            texts += [_part(function, "name"), _part(function, "arguments")]
    audio = _part(delta, "audio")
    if audio is not None:
        texts.append(_part(audio, "transcript"))
    return [text for text in texts if isinstance(text, str) and text]
