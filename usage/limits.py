"""Per-key and per-team limits: requests per minute, tokens per minute and a spend budget per period."""

import asyncio
import calendar
import logging
import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from keys.lookup import KeyRecord
from llmproxy_site.dbthread import run_in_db_thread
from teams.records import TeamRecord
from usage.alerts import BudgetAlerts, watches_budget
from usage.counters import (
    BUDGET_UNKNOWN,
    Admission,
    AdmissionResult,
    Buckets,
    DatabaseCounters,
    RedisCounters,
    Settlement,
    read_counter,
)
from usage.reports import period_start, recorded_spend

if TYPE_CHECKING:
    from usage.recorder import UsageRecorder

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_RESERVATION = 4096
# With Redis, a finished request is charged by this worker's next admission (the same round trip), or after this
# long when no request comes: other workers see a spend at most this much later than this one does.
SETTLE_DELAY_SECONDS = 0.01
MICRO = Decimal(1_000_000)


class LimitExceeded(Exception):
    """A key, or its team, is over one of its limits (HTTP 429 in the API)."""

    def __init__(self, message: str, *, type: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.headers = headers


class LimitsUnavailable(Exception):
    """The counter store (Redis or the database) cannot be reached (HTTP 503 in the API)."""


Record = KeyRecord | TeamRecord


@dataclass(frozen=True)
class Subject:
    """One thing whose limits a request must pass: the key, or the key's team."""

    label: str  # "key" or "team"
    record: Record
    period: str  # the budget period this request falls in: "day:2026-11-05", "month:2026-11" or "total"
    budget_ttl: int  # seconds until that period ends (0: never)


@dataclass(frozen=True)
class LimitHold:
    """What one admitted request holds: its buckets, its token reservation and the headers to send."""

    admission: Admission
    subjects: tuple[Subject, ...]
    headers: dict[str, str]


@dataclass(frozen=True)
class Unsettled:
    """A finished request not charged yet: its subjects (for alerts) and what it used."""

    subjects: tuple[Subject, ...]
    settlement: Settlement

    @property
    def watched(self) -> bool:
        return self.settlement.cost_micro_usd > 0 and any(map(watches_budget, self.subjects))


def budget_window(period: str, now: datetime) -> tuple[str, int]:
    """The label of the budget period `now` falls in and the seconds until it ends (0: never)."""
    if period == "day":
        return f"day:{now:%Y-%m-%d}", 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    if period == "month":
        days_in_month = calendar.monthrange(now.year, now.month)[1]
        end = (days_in_month - now.day) * 86400 + 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
        return f"month:{now:%Y-%m}", end
    return "total", 0


def bucket_owner(record: Record) -> str:
    """Key buckets keep their names from before teams (counters survive the upgrade); a team's say so."""
    return f"team:{record.id}" if isinstance(record, TeamRecord) else str(record.id)


def budget_bucket(record: Record, now: datetime) -> tuple[str, int]:
    """The budget bucket of the current period and the seconds until the period ends (0: never)."""
    label, ttl = budget_window(record.budget_period, now)
    return f"budget:{bucket_owner(record)}:{label}", ttl


def limited_subjects(key: KeyRecord) -> list[tuple[str, Record]]:
    """Every limit owner that applies: the key when it has limits, its team when that has limits."""
    subjects: list[tuple[str, Record]] = [("key", key)] if key.has_limits else []
    if key.team is not None and key.team.has_limits:
        subjects.append(("team", key.team))
    return subjects


def plan_admission(key: KeyRecord, *, token_reservation: int | None, now: datetime) -> LimitHold | None:
    """The admission of one request (None: nothing limits this key); its headers are filled in once admitted."""
    owners = limited_subjects(key)
    if not owners:
        return None
    minute = int(now.timestamp() // 60)
    buckets, subjects = [], []
    for label, record in owners:
        owner = bucket_owner(record)
        period, ttl = budget_window(record.budget_period, now)
        budget = record.max_budget_usd
        buckets.append(Buckets(
            requests=f"rpm:{owner}:{minute}",
            tokens=f"tpm:{owner}:{minute}",
            budget=f"budget:{owner}:{period}",
            rpm_limit=record.rpm_limit,
            tpm_limit=record.tpm_limit,
            budget_micro_usd=None if budget is None else int(budget * MICRO),
        ))  # fmt: skip
        subjects.append(Subject(label=label, record=record, period=period, budget_ttl=ttl))
    admission = Admission(subjects=tuple(buckets), token_reservation=token_reservation or DEFAULT_TOKEN_RESERVATION)
    return LimitHold(admission=admission, subjects=tuple(subjects), headers={})


def _tightest(limits: list[int | None], counts: list[int]) -> tuple[int, int] | None:
    """(remaining, limit) of the limit with the least remaining; None when no limit applies."""
    left = [(limit - count, limit) for limit, count in zip(limits, counts, strict=True) if limit is not None]
    return min(left) if left else None


def rate_limit_headers(admission: Admission, result: AdmissionResult, now: datetime) -> dict[str, str]:
    """Per kind (requests, tokens), the limit with the least remaining of those that apply."""
    reset = f"{60 - now.second - now.microsecond / 1e6:.3f}s".replace(".000s", "s")
    headers: dict[str, str] = {}
    requests = _tightest([b.rpm_limit for b in admission.subjects], [u.requests for u in result.used])
    tokens = _tightest([b.tpm_limit for b in admission.subjects], [u.tokens for u in result.used])
    for kind, tightest in (("requests", requests), ("tokens", tokens)):
        if tightest is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(tightest[1])
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, tightest[0]))
            headers[f"x-ratelimit-reset-{kind}"] = reset
    return headers


def refusal_error(subject: Subject, reason: str | None, headers: dict[str, str], now: datetime) -> LimitExceeded:
    record = subject.record
    if reason == "budget":
        retry = {"Retry-After": str(subject.budget_ttl)} if subject.budget_ttl else {}
        period = "in total" if record.budget_period == "total" else f"this {record.budget_period}"
        who = f"This API key's team '{record.name}' has" if subject.label == "team" else "This API key has"
        return LimitExceeded(
            f"{who} spent its budget of ${record.max_budget_usd} {period}.",
            type="insufficient_quota",
            headers={**headers, **retry},
        )
    what = "requests" if reason == "requests" else "tokens"
    limit = record.rpm_limit if reason == "requests" else record.tpm_limit
    retry_after = max(1, math.ceil(60 - now.second - now.microsecond / 1e6))
    who = f"this API key's team '{record.name}'" if subject.label == "team" else "this API key"
    return LimitExceeded(
        f"Rate limit reached for {who}: {limit} {what} per minute. Try again in {retry_after}s.",
        type="rate_limit_exceeded",
        headers={**headers, "Retry-After": str(retry_after)},
    )


def micro_usd(cost_usd: float | None) -> int:
    return 0 if not cost_usd else max(0, round(cost_usd * 1_000_000))


def unflushed_spend(rows: list[dict], *, since: date | None, key_id: int | None = None,
                    team_id: int | None = None) -> Decimal:  # fmt: skip
    """The spend in rows not written yet, of one key (key_id) or one team (team_id)."""
    field, owner = ("team_id", team_id) if team_id is not None else ("api_key_id", key_id)
    return sum(
        (row["cost_usd"] or Decimal(0) for row in rows
         if row.get(field) == owner and (since is None or row["created_at"].date() >= since)),
        Decimal(0),
    )  # fmt: skip


class LimitKeeper:
    """Admits requests of limited keys (and keys of limited teams) against the shared counters, and settles what
    they really used.

    Every limit that applies, the key's and its team's, is admitted in one atomic step of the store (one Redis
    script, or one database transaction): all are counted or none. A budget bucket the store does not have (a new
    period, a Redis restart, REDIS_URL just turned on) is rebuilt from the recorded usage of the period before the
    request is admitted: one rebuild per missing bucket and process at a time (concurrent requests wait for the same
    one); while the bucket exists, admission never reads the database.
    """

    def __init__(self, counters: RedisCounters | DatabaseCounters, *, recorder: "UsageRecorder | None" = None,
                 alerts: BudgetAlerts | None = None) -> None:  # fmt: skip
        self.counters = counters
        self.recorder = recorder
        self.alerts = alerts if alerts is not None else BudgetAlerts()
        self._pending: set[asyncio.Task] = set()
        self._rebuilds: dict[str, asyncio.Future] = {}
        self._unsettled: list[Unsettled] = []
        self._settle_timer: asyncio.TimerHandle | None = None

    async def admit(self, key: KeyRecord, *, token_reservation: int | None) -> LimitHold | None:
        now = timezone.now()
        hold = plan_admission(key, token_reservation=token_reservation, now=now)
        if hold is None:  # no limit applies: no counter is touched
            return None
        admission = hold.admission
        result = await self._admit(admission)
        if result.reason == BUDGET_UNKNOWN:
            await asyncio.gather(*(self._rebuild_budget(hold, index, now) for index in result.unknown))
            result = await self._admit(admission)
            if result.reason == BUDGET_UNKNOWN:  # lost again at once: fail closed rather than admit uncounted
                raise LimitsUnavailable("Rate limits cannot be checked right now; try again shortly.")
        headers = rate_limit_headers(admission, result, now)
        if not result.allowed:
            raise refusal_error(hold.subjects[result.refused_by or 0], result.reason, headers, now)
        return replace(hold, headers=headers)

    async def _admit(self, admission: Admission) -> AdmissionResult:
        """One atomic admission, charging the requests this worker finished since its last call (Redis). If the
        caller is cancelled meanwhile (the client went away), the call still completes in the store: whatever it
        counted for this request is given back once it does."""
        unsettled, self._unsettled = self._unsettled, []
        if unsettled:
            if self._settle_timer is not None:  # nothing left for the batch: no wake-up for it
                self._settle_timer.cancel()
                self._settle_timer = None
            attempt = asyncio.ensure_future(self.counters.admit(admission, [u.settlement for u in unsettled]))
            attempt.add_done_callback(lambda done: self._after_settling(done, unsettled))
        else:
            attempt = asyncio.ensure_future(self.counters.admit(admission))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._release_if_counted(done, admission))
            raise
        except Exception as exc:  # fail closed: a limited key is never let through uncounted
            logger.error("rate-limit counters unavailable: %s: %s", type(exc).__name__, exc)
            raise LimitsUnavailable("Rate limits cannot be checked right now; try again shortly.") from None

    def _after_settling(self, attempt: asyncio.Future, unsettled: list[Unsettled]) -> None:
        if attempt.cancelled() or attempt.exception() is not None:
            logger.warning("could not settle %d rate-limit reservations", len(unsettled))
        elif any(u.watched for u in unsettled):
            self._track(asyncio.ensure_future(self._alert(unsettled, attempt.result().settled_spend)))

    async def _alert(self, unsettled: list[Unsettled], spent: tuple[int | None, ...]) -> None:
        """Budget alerts for the thresholds these charges crossed (`spent`: per subject, in order)."""
        offset = 0
        for item in unsettled:
            count = len(item.subjects)
            if item.watched:
                await self.alerts.note_spend(item.subjects, spent[offset : offset + count])
            offset += count

    def _release_if_counted(self, attempt: asyncio.Future, admission: Admission) -> None:
        if attempt.cancelled() or attempt.exception() is not None or not attempt.result().allowed:
            return
        self._track(asyncio.ensure_future(self._release(admission)))

    async def _release(self, admission: Admission) -> None:
        try:
            await self.counters.release(admission)
        except Exception:
            logger.warning("could not release the reservation of a cancelled request", exc_info=True)

    async def _rebuild_budget(self, hold: LimitHold, index: int, now: datetime) -> None:
        subject, bucket = hold.subjects[index], hold.admission.subjects[index].budget
        rebuild = self._rebuilds.get(bucket)
        if rebuild is None:
            rebuild = asyncio.ensure_future(self._seed_budget(subject, bucket, now))
            self._rebuilds[bucket] = rebuild
            rebuild.add_done_callback(lambda _: self._rebuilds.pop(bucket, None))
        try:
            await asyncio.shield(rebuild)
        except Exception as exc:
            logger.error("could not rebuild the budget of %s %s: %s: %s", subject.label, subject.record.name,
                         type(exc).__name__, exc)  # fmt: skip
            raise LimitsUnavailable("Rate limits cannot be checked right now; try again shortly.") from None

    async def _seed_budget(self, subject: Subject, bucket: str, now: datetime) -> None:
        """The spend of the period (of the key, or of every key of the team): the daily rollup plus this process's
        rows not written yet, read while no batch is being written (so no row is counted twice or missed)."""
        since = period_start(subject.record.budget_period, now.date())
        owner = {"team_id": subject.record.id} if subject.label == "team" else {"key_id": subject.record.id}
        if self.recorder is None:
            spent = await run_in_db_thread(recorded_spend, since=since, **owner)
        else:
            spent, unwritten = await self.recorder.read_beside_buffer(recorded_spend, since=since, **owner)
            spent += unflushed_spend(unwritten, since=since, **owner)
        await self.counters.seed_budget(bucket, micro_usd(float(spent)), subject.budget_ttl)
        logger.info("rebuilt budget bucket %s of %s %s: $%s spent", bucket, subject.label, subject.record.name, spent)

    async def settle(self, hold: LimitHold, *, tokens_used: int, cost: Decimal | None) -> None:
        """Charge every subject; then, off the request's path, alert on a budget threshold crossed."""
        charged = micro_usd(float(cost) if cost else None)
        watched = charged > 0 and any(map(watches_budget, hold.subjects))
        try:
            spent = await self.counters.settle(
                hold.admission,
                token_delta=tokens_used - hold.admission.token_reservation,
                cost_micro_usd=charged,
                read_spend=watched,
            )
        except Exception:
            logger.warning("could not settle a rate-limit reservation", exc_info=True)
            return
        if watched:
            await self.alerts.note_spend(hold.subjects, spent)

    def settle_later(self, hold: LimitHold, *, tokens_used: int, cost: Decimal | None) -> None:
        """Charge a finished request off its path: with Redis, in the worker's next admission or a batch at most
        SETTLE_DELAY_SECONDS later; with the database, at once in a task of its own."""
        loop = asyncio.get_running_loop()
        if not self.counters.settles_in_batches:
            self._track(loop.create_task(self.settle(hold, tokens_used=tokens_used, cost=cost)))
            return
        charge = Settlement(hold.admission, tokens_used - hold.admission.token_reservation,
                            micro_usd(float(cost) if cost else None))  # fmt: skip
        self._unsettled.append(Unsettled(hold.subjects, charge))
        if self._settle_timer is None:
            self._settle_timer = loop.call_later(SETTLE_DELAY_SECONDS, self._settle_batch_now)

    def _settle_batch_now(self) -> None:
        self._settle_timer = None
        if self._unsettled:
            self._track(asyncio.ensure_future(self._settle_batch()))

    async def _settle_batch(self) -> None:
        unsettled, self._unsettled = self._unsettled, []
        if not unsettled:
            return
        try:
            spent = await self.counters.settle_many([u.settlement for u in unsettled])
        except Exception:
            logger.warning("could not settle %d rate-limit reservations", len(unsettled), exc_info=True)
            return
        if any(u.watched for u in unsettled):
            await self._alert(unsettled, spent)

    def _track(self, task: asyncio.Future) -> None:
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        await self._settle_batch()
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def enforced_spend(record: Record, now: datetime) -> Decimal | None:
    """The spend in a key's (or team's) current budget bucket as enforcement reads it (sync: the admin); None if
    missing."""
    bucket, _ = budget_bucket(record, now)
    micro = read_counter(bucket, redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX)
    return None if micro is None else Decimal(micro) / MICRO


def counters_from_settings(redis_url: str | None, redis_prefix: str) -> RedisCounters | DatabaseCounters:
    return RedisCounters(redis_url, prefix=redis_prefix) if redis_url else DatabaseCounters()
