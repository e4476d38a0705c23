"""Per-key limits: requests per minute, tokens per minute and a spend budget per period."""

import asyncio
import calendar
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from keys.lookup import KeyRecord
from llmproxy_site.dbthread import run_in_db_thread
from usage.counters import (
    BUDGET_UNKNOWN,
    Admission,
    AdmissionResult,
    DatabaseCounters,
    RedisCounters,
    read_counter,
)
from usage.reports import period_start, recorded_spend

if TYPE_CHECKING:
    from usage.recorder import UsageRecorder

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_RESERVATION = 4096
MICRO = Decimal(1_000_000)


class LimitExceeded(Exception):
    """A key is over one of its limits (HTTP 429 in the API)."""

    def __init__(self, message: str, *, type: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.headers = headers


class LimitsUnavailable(Exception):
    """The counter store (Redis or the database) cannot be reached (HTTP 503 in the API)."""


@dataclass(frozen=True)
class LimitHold:
    """What one admitted request holds: its buckets, its token reservation and the headers to send."""

    admission: Admission
    headers: dict[str, str]


def budget_bucket(key: KeyRecord, now: datetime) -> tuple[str, int]:
    """The budget bucket of the current period and the seconds until the period ends (0: never)."""
    if key.budget_period == "day":
        end = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
        return f"budget:{key.id}:day:{now:%Y-%m-%d}", end
    if key.budget_period == "month":
        days_in_month = calendar.monthrange(now.year, now.month)[1]
        end = (days_in_month - now.day) * 86400 + 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
        return f"budget:{key.id}:month:{now:%Y-%m}", end
    return f"budget:{key.id}:total", 0


def plan_admission(key: KeyRecord, *, token_reservation: int | None, now: datetime) -> tuple[Admission, int]:
    minute = int(now.timestamp() // 60)
    bucket, budget_ttl = budget_bucket(key, now)
    admission = Admission(
        requests_bucket=f"rpm:{key.id}:{minute}",
        tokens_bucket=f"tpm:{key.id}:{minute}",
        budget_bucket=bucket,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
        budget_micro_usd=None if key.max_budget_usd is None else int(key.max_budget_usd * MICRO),
        token_reservation=token_reservation or DEFAULT_TOKEN_RESERVATION,
    )
    return admission, budget_ttl


def rate_limit_headers(key: KeyRecord, result: AdmissionResult, now: datetime) -> dict[str, str]:
    reset = f"{60 - now.second - now.microsecond / 1e6:.3f}s".replace(".000s", "s")
    headers: dict[str, str] = {}
    if key.rpm_limit is not None:
        headers["x-ratelimit-limit-requests"] = str(key.rpm_limit)
        headers["x-ratelimit-remaining-requests"] = str(max(0, key.rpm_limit - result.requests_used))
        headers["x-ratelimit-reset-requests"] = reset
    if key.tpm_limit is not None:
        headers["x-ratelimit-limit-tokens"] = str(key.tpm_limit)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, key.tpm_limit - result.tokens_used))
        headers["x-ratelimit-reset-tokens"] = reset
    return headers


def refusal_error(key: KeyRecord, result: AdmissionResult, headers: dict[str, str], budget_ttl: int,
                  now: datetime) -> LimitExceeded:  # fmt: skip
    if result.reason == "budget":
        retry = {"Retry-After": str(budget_ttl)} if budget_ttl else {}
        period = "in total" if key.budget_period == "total" else f"this {key.budget_period}"
        return LimitExceeded(
            f"This API key has spent its budget of ${key.max_budget_usd} {period}.",
            type="insufficient_quota",
            headers={**headers, **retry},
        )
    what = "requests" if result.reason == "requests" else "tokens"
    limit = key.rpm_limit if result.reason == "requests" else key.tpm_limit
    retry_after = max(1, math.ceil(60 - now.second - now.microsecond / 1e6))
    return LimitExceeded(
        f"Rate limit reached for this API key: {limit} {what} per minute. Try again in {retry_after}s.",
        type="rate_limit_exceeded",
        headers={**headers, "Retry-After": str(retry_after)},
    )


def micro_usd(cost_usd: float | None) -> int:
    return 0 if not cost_usd else max(0, round(cost_usd * 1_000_000))


def unflushed_spend(rows: list[dict], *, key_id: int, since: date | None) -> Decimal:
    return sum(
        (row["cost_usd"] or Decimal(0) for row in rows
         if row["api_key_id"] == key_id and (since is None or row["created_at"].date() >= since)),
        Decimal(0),
    )  # fmt: skip


class LimitKeeper:
    """Admits requests of limited keys against the shared counters and settles what they really used.

    A budget bucket the store does not have (a new period, a Redis restart, REDIS_URL just turned on) is rebuilt
    from the recorded usage of the period before the request is admitted: one rebuild per missing bucket and
    process at a time (concurrent requests wait for the same one); while the bucket exists, admission never reads
    the database.
    """

    def __init__(self, counters: RedisCounters | DatabaseCounters, *, recorder: "UsageRecorder | None" = None) -> None:
        self.counters = counters
        self.recorder = recorder
        self._pending: set[asyncio.Task] = set()
        self._rebuilds: dict[str, asyncio.Future] = {}

    async def admit(self, key: KeyRecord, *, token_reservation: int | None) -> LimitHold | None:
        if not key.has_limits:
            return None
        now = timezone.now()
        admission, budget_ttl = plan_admission(key, token_reservation=token_reservation, now=now)
        result = await self._admit(admission)
        if result.reason == BUDGET_UNKNOWN:
            await self._rebuild_budget(key, admission.budget_bucket, budget_ttl, now)
            result = await self._admit(admission)
            if result.reason == BUDGET_UNKNOWN:  # lost again at once: fail closed rather than admit uncounted
                raise LimitsUnavailable("Rate limits cannot be checked right now; try again shortly.")
        headers = rate_limit_headers(key, result, now)
        if not result.allowed:
            raise refusal_error(key, result, headers, budget_ttl, now)
        return LimitHold(admission=admission, headers=headers)

    async def _admit(self, admission: Admission) -> AdmissionResult:
        """One atomic admission. If the caller is cancelled meanwhile (the client went away), the admission still
        completes in the store: whatever it counted is given back once it does."""
        attempt = asyncio.ensure_future(self.counters.admit(admission))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._release_if_counted(done, admission))
            raise
        except Exception as exc:  # fail closed: a limited key is never let through uncounted
            logger.error("rate-limit counters unavailable: %s: %s", type(exc).__name__, exc)
            raise LimitsUnavailable("Rate limits cannot be checked right now; try again shortly.") from None

    def _release_if_counted(self, attempt: asyncio.Future, admission: Admission) -> None:
        if attempt.cancelled() or attempt.exception() is not None or not attempt.result().allowed:
            return
        self._track(asyncio.ensure_future(self._release(admission)))

    async def _release(self, admission: Admission) -> None:
        try:
            await self.counters.release(admission)
        except Exception:
            logger.warning("could not release the reservation of a cancelled request", exc_info=True)

    async def _rebuild_budget(self, key: KeyRecord, bucket: str, ttl_seconds: int, now: datetime) -> None:
        rebuild = self._rebuilds.get(bucket)
        if rebuild is None:
            rebuild = asyncio.ensure_future(self._seed_budget(key, bucket, ttl_seconds, now))
            self._rebuilds[bucket] = rebuild
            rebuild.add_done_callback(lambda _: self._rebuilds.pop(bucket, None))
        try:
            await asyncio.shield(rebuild)
        except Exception as exc:
            logger.error("could not rebuild the budget of key %s: %s: %s", key.name, type(exc).__name__, exc)
            raise LimitsUnavailable("Rate limits cannot be checked right now; try again shortly.") from None

    async def _seed_budget(self, key: KeyRecord, bucket: str, ttl_seconds: int, now: datetime) -> None:
        """The spend of the period: the daily rollup plus this process's rows not written yet, read while no batch
        is being written (so no row is counted twice or missed)."""
        since = period_start(key.budget_period, now.date())
        if self.recorder is None:
            spent = await run_in_db_thread(recorded_spend, key_id=key.id, since=since)
        else:
            spent, unwritten = await self.recorder.read_beside_buffer(recorded_spend, key_id=key.id, since=since)
            spent += unflushed_spend(unwritten, key_id=key.id, since=since)
        await self.counters.seed_budget(bucket, micro_usd(float(spent)), ttl_seconds)
        logger.info("rebuilt budget bucket %s of key %s: $%s spent", bucket, key.name, spent)

    async def settle(self, hold: LimitHold, *, tokens_used: int, cost: Decimal | None) -> None:
        try:
            await self.counters.settle(
                tokens_bucket=hold.admission.tokens_bucket,
                token_delta=tokens_used - hold.admission.token_reservation,
                budget_bucket=hold.admission.budget_bucket,
                cost_micro_usd=micro_usd(float(cost) if cost else None),
            )
        except Exception:
            logger.warning("could not settle a rate-limit reservation", exc_info=True)

    def settle_later(self, hold: LimitHold, *, tokens_used: int, cost: Decimal | None) -> None:
        self._track(asyncio.get_running_loop().create_task(self.settle(hold, tokens_used=tokens_used, cost=cost)))

    def _track(self, task: asyncio.Future) -> None:
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def enforced_spend(key: KeyRecord, now: datetime) -> Decimal | None:
    """The spend in the key's current budget bucket as enforcement reads it (sync: the admin); None if missing."""
    bucket, _ = budget_bucket(key, now)
    micro = read_counter(bucket, redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX)
    return None if micro is None else Decimal(micro) / MICRO


def counters_from_settings(redis_url: str | None, redis_prefix: str) -> RedisCounters | DatabaseCounters:
    return RedisCounters(redis_url, prefix=redis_prefix) if redis_url else DatabaseCounters()
