"""Shared counters for rate limits and budgets: Redis when REDIS_URL is set, else the database.

Never per-process memory: every worker and host must see the same counts, or the limit multiplies.
Both stores make one admission decision atomically: count the request, reserve the tokens, read the spend.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from llmproxy_site.dbthread import run_in_db_thread


@dataclass(frozen=True)
class Buckets:
    """One subject's counters (a key's, a team's) and its limits; a limit of None is not checked."""

    requests: str
    tokens: str
    budget: str
    rpm_limit: int | None
    tpm_limit: int | None
    budget_micro_usd: int | None


@dataclass(frozen=True)
class Admission:
    """What to count for one request: every subject's buckets, all admitted together or none."""

    subjects: tuple[Buckets, ...]
    token_reservation: int
    window_seconds: int = 60


@dataclass(frozen=True)
class Used:
    """A subject's counts as admission saw them (after counting this request when it was admitted)."""

    requests: int
    tokens: int
    spent_micro_usd: int


@dataclass(frozen=True)
class AdmissionResult:
    allowed: bool
    reason: str | None  # "requests", "tokens" or "budget" when refused; BUDGET_UNKNOWN: rebuild `unknown` first
    refused_by: int | None  # the index of the subject that refused
    used: tuple[Used, ...]  # per subject, in the admission's order
    unknown: tuple[int, ...] = ()  # the subjects whose budget bucket is missing
    settled_spend: tuple[int | None, ...] = ()  # per settled subject: its budget's spend after the charge (None: gone)


@dataclass(frozen=True)
class Settlement:
    """What one finished request really used, charged to every subject of its admission."""

    admission: Admission
    token_delta: int  # the tokens really used minus the reservation
    cost_micro_usd: int


def settle_arguments(settlements: Sequence[Settlement], prefix: str) -> tuple[list[str], list[int]]:
    """SETTLE_PART's keys and arguments: a (tokens, budget) pair per subject of each settlement."""
    keys: list[str] = []
    args: list[int] = [0]
    for settlement in settlements:
        for subject in settlement.admission.subjects:
            keys += [prefix + subject.tokens, prefix + subject.budget]
            args += [settlement.token_delta, settlement.cost_micro_usd]
    args[0] = len(keys) // 2
    return keys, args


def spends(values: Sequence[int | str]) -> tuple[int | None, ...]:
    return tuple(None if int(value) < 0 else int(value) for value in values)


BUDGET_UNKNOWN = "budget_unknown"  # a budget bucket is missing (a new period, or the store lost it): rebuild it
NOTHING_USED = Used(0, 0, 0)

# Charges finished requests: ARGV[1] is the number of (tokens, budget) bucket pairs, the first KEYS; ARGV[2i],
# ARGV[2i+1] the pair's token correction and cost. A bucket that is gone stays gone: an expired minute needs no
# correction (re-creating it would leave a key without a TTL), and a lost budget bucket is rebuilt from the request
# log, where the request's cost already is. `spent` holds each budget's spend after the charge (-1: gone).
SETTLE_PART = """
local settled = tonumber(ARGV[1])
local spent = {}
for i = 1, settled do
  local token_delta = tonumber(ARGV[2 * i])
  if token_delta ~= 0 and redis.call('EXISTS', KEYS[2 * i - 1]) == 1 then
    redis.call('INCRBY', KEYS[2 * i - 1], token_delta)
  end
  spent[i] = -1
  if redis.call('EXISTS', KEYS[2 * i]) == 1 then spent[i] = redis.call('INCRBY', KEYS[2 * i], ARGV[2 * i + 1]) end
end
"""

SETTLE_SCRIPT = SETTLE_PART + "return spent\n"

# Needs Redis 7.0+ (EXPIRE ... NX). The requests this worker finished since its last call are charged first
# (SETTLE_PART: one round trip per request, and this worker's next admission sees its last request's spend); then,
# after their keys and arguments: KEYS requests, tokens, budget per subject; ARGV reservation, TTL, then rpm, tpm,
# budget per subject (-1: no limit). Nothing is counted when a budget bucket is missing: the caller seeds it first.
# Refusals are checked budgets first (the longest wait), then requests, then tokens, over every subject.
ADMISSION_PART = """
local k0 = 2 * settled
local a0 = 1 + 2 * settled
local reserve = tonumber(ARGV[a0 + 1])
local ttl = tonumber(ARGV[a0 + 2])
local n = (#KEYS - k0) / 3
local used = {}
local unknown = {}
for i = 1, n do
  local budget = tonumber(ARGV[a0 + 3 * i + 2])
  local stored_spend = redis.call('GET', KEYS[k0 + 3 * i])
  if budget >= 0 and not stored_spend then unknown[#unknown + 1] = i - 1 end
  used[i] = {tonumber(redis.call('GET', KEYS[k0 + 3 * i - 2]) or '0'),
             tonumber(redis.call('GET', KEYS[k0 + 3 * i - 1]) or '0'), tonumber(stored_spend or '0')}
end
local function answer(allowed, reason, refused_by)
  local out = {allowed, reason, refused_by, settled}
  for i = 1, settled do out[#out + 1] = spent[i] end
  for i = 1, n do
    out[#out + 1] = used[i][1]; out[#out + 1] = used[i][2]; out[#out + 1] = used[i][3]
  end
  return out
end
if #unknown > 0 then
  local out = answer(0, 'budget_unknown', -1)
  for _, i in ipairs(unknown) do out[#out + 1] = i end
  return out
end
for i = 1, n do
  local budget = tonumber(ARGV[a0 + 3 * i + 2])
  if budget >= 0 and used[i][3] >= budget then return answer(0, 'budget', i - 1) end
end
for i = 1, n do
  local rpm = tonumber(ARGV[a0 + 3 * i])
  if rpm >= 0 and used[i][1] >= rpm then return answer(0, 'requests', i - 1) end
end
for i = 1, n do
  local tpm = tonumber(ARGV[a0 + 3 * i + 1])
  if tpm >= 0 and used[i][2] > 0 and used[i][2] + reserve > tpm then return answer(0, 'tokens', i - 1) end
end
for i = 1, n do
  used[i][1] = redis.call('INCR', KEYS[k0 + 3 * i - 2])
  redis.call('EXPIRE', KEYS[k0 + 3 * i - 2], ttl, 'NX')
  used[i][2] = redis.call('INCRBY', KEYS[k0 + 3 * i - 1], reserve)
  redis.call('EXPIRE', KEYS[k0 + 3 * i - 1], ttl, 'NX')
end
return answer(1, '', -1)
"""
ADMIT_SCRIPT = SETTLE_PART + ADMISSION_PART

RELEASE_SCRIPT = """
for i = 1, #KEYS / 2 do
  if redis.call('EXISTS', KEYS[2 * i - 1]) == 1 then redis.call('DECR', KEYS[2 * i - 1]) end
  if redis.call('EXISTS', KEYS[2 * i]) == 1 then redis.call('DECRBY', KEYS[2 * i], ARGV[1]) end
end
return 1
"""


def _limit_arg(limit: int | None) -> int:
    return -1 if limit is None else limit


def refusal(admission: Admission, used: list[Used]) -> tuple[str, int] | None:
    """The first limit the counts break, in the scripts' order (budgets, then requests, then tokens)."""
    for index, subject in enumerate(admission.subjects):
        if subject.budget_micro_usd is not None and used[index].spent_micro_usd >= subject.budget_micro_usd:
            return "budget", index
    for index, subject in enumerate(admission.subjects):
        if subject.rpm_limit is not None and used[index].requests >= subject.rpm_limit:
            return "requests", index
    reserve = admission.token_reservation
    for index, subject in enumerate(admission.subjects):
        tokens = used[index].tokens
        if subject.tpm_limit is not None and tokens > 0 and tokens + reserve > subject.tpm_limit:
            return "tokens", index
    return None


def with_hiredis_packing(connection_class: type) -> type:
    """The pool's connection class (TCP, TLS or Unix socket, as the URL says), packing commands with hiredis's C
    packer as redis-py's sync client does when hiredis is installed (pinned here); its asyncio client packs in Python
    (~40 µs for an admission's 16 arguments). Imported here, not at the top: redis-py loads OpenTelemetry with it,
    which a gateway without Redis must not pay (tests/telemetry/test_tracing.py)."""
    from redis.connection import HiredisRespSerializer

    serializer = HiredisRespSerializer()

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        return serializer.pack(*args)

    return type(f"Hiredis{connection_class.__name__}", (connection_class,), {"pack_command": pack_command})


REDIS_MAX_CONNECTIONS = 100  # per worker; more requests at once wait for a free connection (up to the timeout)
REDIS_POOL_TIMEOUT_SECONDS = 5.0


class RedisCounters:
    settles_in_batches = True  # admit() charges finished requests in the same round trip (usage.limits)

    def __init__(self, url: str, *, prefix: str = "llmproxy:", max_connections: int = REDIS_MAX_CONNECTIONS) -> None:
        import redis.asyncio as redis

        # A blocking pool: past max_connections a request waits for a connection instead of failing at once (the
        # default pool raises "Too many connections", which the bench saw as 503s at 64 concurrent team requests,
        # each holding one connection to admit and, in the background, one to settle).
        pool = redis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=max_connections, timeout=REDIS_POOL_TIMEOUT_SECONDS
        )
        pool.connection_class = with_hiredis_packing(pool.connection_class)
        self._redis = redis.Redis(connection_pool=pool)
        self.prefix = prefix
        self._admit = self._redis.register_script(ADMIT_SCRIPT)
        self._settle = self._redis.register_script(SETTLE_SCRIPT)
        self._release = self._redis.register_script(RELEASE_SCRIPT)

    async def admit(self, admission: Admission, settlements: Sequence[Settlement] = ()) -> AdmissionResult:
        """One script, one round trip, over every subject's buckets; `settlements` are charged first."""
        keys, args = settle_arguments(settlements, self.prefix)
        args += [admission.token_reservation, admission.window_seconds * 2]
        for subject in admission.subjects:
            keys += [self.prefix + subject.requests, self.prefix + subject.tokens, self.prefix + subject.budget]
            args += [_limit_arg(subject.rpm_limit), _limit_arg(subject.tpm_limit), _limit_arg(subject.budget_micro_usd)]
        answer = await self._admit(keys=keys, args=args)
        allowed, reason, refused_by, settled = answer[0], answer[1] or None, int(answer[2]), int(answer[3])
        n = len(admission.subjects)
        counts = [int(value) for value in answer[4 + settled : 4 + settled + 3 * n]]
        used = tuple(Used(*counts[3 * i : 3 * i + 3]) for i in range(n))
        unknown = tuple(int(i) for i in answer[4 + settled + 3 * n :])
        return AdmissionResult(bool(allowed), reason, None if refused_by < 0 else refused_by, used, unknown,
                               settled_spend=spends(answer[4 : 4 + settled]))  # fmt: skip

    async def release(self, admission: Admission) -> None:
        """Give back what an admission counted (its request never went out)."""
        keys = [self.prefix + name for s in admission.subjects for name in (s.requests, s.tokens)]
        await self._release(keys=keys, args=[admission.token_reservation])

    async def seed_budget(self, bucket: str, spent_micro_usd: int, ttl_seconds: int) -> None:
        """Create a missing budget bucket with the spend recorded elsewhere; never overwrite one that exists."""
        await self._redis.set(self.prefix + bucket, spent_micro_usd, nx=True, ex=ttl_seconds or None)

    async def settle(self, admission: Admission, *, token_delta: int, cost_micro_usd: int,
                     read_spend: bool = True) -> tuple[int | None, ...]:  # fmt: skip
        """Charge every subject the tokens really used and the cost; returns each budget's spend after (None: gone).
        The script returns the figures anyway, so `read_spend` changes nothing here."""
        return await self.settle_many([Settlement(admission, token_delta, cost_micro_usd)])

    async def settle_many(self, settlements: Sequence[Settlement]) -> tuple[int | None, ...]:
        """Charge several finished requests in one round trip; the spends per subject, in order."""
        keys, args = settle_arguments(settlements, self.prefix)
        return spends(await self._settle(keys=keys, args=args))

    async def read(self, bucket: str) -> int:
        return int(await self._redis.get(self.prefix + bucket) or 0)

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)


class DatabaseCounters:
    """Counters in the LimitCounter table; each admission is one short transaction with row locks."""

    settles_in_batches = False

    @staticmethod
    def _ensure_rows(buckets: list[str], expires_at) -> None:
        from usage.models import LimitCounter

        existing = set(LimitCounter.objects.filter(bucket__in=buckets).values_list("bucket", flat=True))
        missing = [LimitCounter(bucket=b, value=0, expires_at=expires_at) for b in buckets if b not in existing]
        if missing:
            LimitCounter.objects.bulk_create(missing, ignore_conflicts=True)

    def _admit_sync(self, admission: Admission) -> AdmissionResult:
        from usage.models import LimitCounter

        subjects = admission.subjects
        expires_at = timezone.now() + timedelta(seconds=admission.window_seconds * 2)
        self._ensure_rows([name for s in subjects for name in (s.requests, s.tokens)], expires_at)
        with transaction.atomic():
            values = dict(
                LimitCounter.objects.select_for_update()
                .filter(bucket__in=[name for s in subjects for name in (s.requests, s.tokens, s.budget)])
                .order_by("bucket")  # one lock order for every worker: no deadlocks
                .values_list("bucket", "value")
            )
            used = [Used(values.get(s.requests, 0), values.get(s.tokens, 0), values.get(s.budget, 0)) for s in subjects]
            unknown = tuple(
                i for i, s in enumerate(subjects) if s.budget_micro_usd is not None and s.budget not in values
            )
            if unknown:
                return AdmissionResult(False, BUDGET_UNKNOWN, None, tuple(used), unknown)
            refused = refusal(admission, used)
            if refused:
                return AdmissionResult(False, refused[0], refused[1], tuple(used))
            for subject in subjects:
                LimitCounter.objects.filter(bucket=subject.requests).update(value=F("value") + 1)
                LimitCounter.objects.filter(bucket=subject.tokens).update(
                    value=F("value") + admission.token_reservation
                )
        reserve = admission.token_reservation
        return AdmissionResult(
            True, None, None, tuple(Used(u.requests + 1, u.tokens + reserve, u.spent_micro_usd) for u in used)
        )

    async def admit(self, admission: Admission) -> AdmissionResult:
        for attempt in range(5):
            try:
                return await run_in_db_thread(self._admit_sync, admission)
            except (IntegrityError, OperationalError):  # a race creating rows, a lock timeout: try again
                await asyncio.sleep(0.01 * (attempt + 1))
        return await run_in_db_thread(self._admit_sync, admission)

    @staticmethod
    def _add(bucket: str, delta: int) -> None:
        from usage.models import LimitCounter

        if delta:
            LimitCounter.objects.filter(bucket=bucket).update(value=F("value") + delta)

    async def release(self, admission: Admission) -> None:
        """Give back what an admission counted (its request never went out)."""

        def release_sync() -> None:
            for subject in admission.subjects:
                self._add(subject.requests, -1)
                self._add(subject.tokens, -admission.token_reservation)

        await run_in_db_thread(release_sync)

    async def seed_budget(self, bucket: str, spent_micro_usd: int, ttl_seconds: int) -> None:
        """Create a missing budget bucket with the spend recorded elsewhere; never overwrite one that exists."""
        from usage.models import LimitCounter

        expires_at = timezone.now() + timedelta(seconds=ttl_seconds or 10 * 365 * 86400)
        row = LimitCounter(bucket=bucket, value=spent_micro_usd, expires_at=expires_at)
        await run_in_db_thread(LimitCounter.objects.bulk_create, [row], ignore_conflicts=True)

    async def settle(self, admission: Admission, *, token_delta: int, cost_micro_usd: int,
                     read_spend: bool = True) -> tuple[int | None, ...]:  # fmt: skip
        """Only existing buckets change: a missing budget bucket is rebuilt from the request log (see Redis)."""
        from usage.models import LimitCounter

        def settle_sync() -> tuple[int | None, ...]:
            for subject in admission.subjects:
                self._add(subject.tokens, token_delta)
                self._add(subject.budget, cost_micro_usd)
            if not read_spend:  # an extra query only when an alert threshold needs the figure
                return (None,) * len(admission.subjects)
            budgets = [subject.budget for subject in admission.subjects]
            spent = dict(LimitCounter.objects.filter(bucket__in=budgets).values_list("bucket", "value"))
            return tuple(spent.get(bucket) for bucket in budgets)

        return await run_in_db_thread(settle_sync)

    async def read(self, bucket: str) -> int:
        from usage.models import LimitCounter

        return await run_in_db_thread(
            lambda: LimitCounter.objects.filter(bucket=bucket).values_list("value", flat=True).first() or 0
        )

    async def close(self) -> None:
        return None


def read_counter(bucket: str, *, redis_url: str | None, prefix: str) -> int | None:
    """A counter as enforcement sees it, read synchronously (the admin); None when the bucket does not exist."""
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        try:
            value = client.get(prefix + bucket)
        finally:
            client.close()
    else:
        from usage.models import LimitCounter

        value = LimitCounter.objects.filter(bucket=bucket).values_list("value", flat=True).first()
    return None if value is None else int(value)
