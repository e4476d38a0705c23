"""One request's account: its usage-log row and its hold on the key's limits, finished exactly once."""

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from django.utils import timezone

from api.errors import GatewayError
from keys.lookup import KeyRecord
from routing.resolver import Route
from usage.cost import cost_usd, estimate_tokens
from usage.limits import LimitHold
from usage.models import EndReason

logger = logging.getLogger(__name__)


class RequestAccount:
    __slots__ = (
        "_finished", "_loop", "_provider_ms", "_provider_started", "_started", "api_key", "completion_tokens",
        "cost_usd", "created_at", "delivered_text", "end_reason", "error_code", "gateway", "limit_hold", "messages",
        "prompt_tokens", "requested_model", "route", "status", "streamed", "ttft_ms", "usage_estimated",
    )  # fmt: skip

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.created_at = timezone.now()
        self._started = time.perf_counter()
        self._finished = False
        self._provider_started: float | None = None
        self._provider_ms = 0.0
        self._loop = asyncio.get_running_loop()
        self.api_key: KeyRecord | None = None
        self.requested_model = ""
        self.route: Route | None = None
        self.messages: list | None = None
        self.streamed = False
        self.status = 200
        self.error_code = ""
        self.end_reason = EndReason.COMPLETED
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.usage_estimated = False
        self.cost_usd: Decimal | None = None
        self.ttft_ms: float | None = None
        self.delivered_text: list[str] = []
        self.limit_hold: LimitHold | None = None

    def provider_started(self) -> None:
        self._provider_started = time.perf_counter()

    def provider_done(self) -> None:
        """The provider answered (its whole body, or its first chunk for a stream)."""
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
        if isinstance(usage, dict):
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)
            return
        self.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        self.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)

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
        if self.route is None or self.end_reason == EndReason.REJECTED or self.prompt_tokens is not None:
            return
        model = self.route.model.litellm_model
        self.prompt_tokens = estimate_tokens(model, messages=self.messages) if self.messages else 0
        self.completion_tokens = estimate_tokens(model, text="".join(self.delivered_text))
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
                self.cost_usd = cost_usd(model.litellm_model, model.provider, prompt, completion)
            self.gateway.usage.record(self.as_row())
            if self.limit_hold is not None:
                self.gateway.limits.settle_later(self.limit_hold, tokens_used=prompt + completion, cost=self.cost_usd)
        except Exception:  # accounting must never break the answer
            logger.exception("could not account for a request")

    def finish_threadsafe(self) -> None:
        """finish() from any thread (Django may close a response from a worker thread)."""
        if not self._finished:
            self._loop.call_soon_threadsafe(self.finish)

    def as_row(self) -> dict[str, Any]:
        model = self.route.model if self.route else None
        prompt, completion = self.prompt_tokens or 0, self.completion_tokens or 0
        return {
            "created_at": self.created_at,
            "api_key_id": self.api_key.id if self.api_key else None,
            "key_name": self.api_key.name if self.api_key else "",
            "requested_model": self.requested_model[:200],
            "resolved_model": model.name if model else "",
            "litellm_model": model.litellm_model if model else "",
            "streamed": self.streamed,
            "status": self.status,
            "error_code": self.error_code[:64],
            "end_reason": str(self.end_reason),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "usage_estimated": self.usage_estimated,
            "cost_usd": self.cost_usd,
            "latency_ms": round((time.perf_counter() - self._started) * 1000, 3),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 3),
        }
