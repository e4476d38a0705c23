"""Shared counters for rate limits and budgets: Redis when REDIS_URL is set, else the database.

Never per-process memory: every worker and host must see the same counts, or the limit multiplies.
Both stores make one admission decision atomically: count the request, reserve the tokens, read the spend.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from llmproxy_site.dbthread import run_in_db_thread


@dataclass(frozen=True)
class Admission:
    """What to count for one request; a limit of None is not checked."""

    requests_bucket: str
    tokens_bucket: str
    budget_bucket: str
    rpm_limit: int | None
    tpm_limit: int | None
    budget_micro_usd: int | None
    token_reservation: int
    window_seconds: int = 60


@dataclass(frozen=True)
class AdmissionResult:
    allowed: bool
    reason: str | None  # "requests", "tokens" or "budget" when refused
    requests_used: int
    tokens_used: int
    spent_micro_usd: int


BUDGET_UNKNOWN = "budget_unknown"  # the budget bucket is missing (a new period, or the store lost it): rebuild it

# Needs Redis 7.0+ (EXPIRE ... NX). Nothing is counted when the budget bucket is missing: the caller seeds it first.
ADMIT_SCRIPT = """
local rpm_limit = tonumber(ARGV[1])
local tpm_limit = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local stored_spend = redis.call('GET', KEYS[3])
if budget >= 0 and not stored_spend then return {0, 'budget_unknown', 0, 0, 0} end
local spent = tonumber(stored_spend or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
if budget >= 0 and spent >= budget then return {0, 'budget', requests, tokens, spent} end
if rpm_limit >= 0 and requests >= rpm_limit then return {0, 'requests', requests, tokens, spent} end
if tpm_limit >= 0 and tokens + reserve > tpm_limit and tokens > 0 then return {0, 'tokens', requests, tokens, spent} end
requests = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ttl, 'NX')
tokens = redis.call('INCRBY', KEYS[2], reserve)
redis.call('EXPIRE', KEYS[2], ttl, 'NX')
return {1, '', requests, tokens, spent}
"""

# A bucket that is gone stays gone: an expired minute needs no correction (re-creating it would leave a key without
# a TTL), and a lost budget bucket is rebuilt from the request log, where this request's cost already is.
SETTLE_SCRIPT = """
if tonumber(ARGV[1]) ~= 0 and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
if tonumber(ARGV[2]) ~= 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], ARGV[2]) end
return 1
"""

RELEASE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECRBY', KEYS[2], ARGV[1]) end
return 1
"""


def _limit_arg(limit: int | None) -> int:
    return -1 if limit is None else limit


class RedisCounters:
    def __init__(self, url: str, *, prefix: str = "llmproxy:") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._admit = self._redis.register_script(ADMIT_SCRIPT)
        self._settle = self._redis.register_script(SETTLE_SCRIPT)
        self._release = self._redis.register_script(RELEASE_SCRIPT)

    async def admit(self, admission: Admission) -> AdmissionResult:
        buckets = (admission.requests_bucket, admission.tokens_bucket, admission.budget_bucket)
        args = [
            _limit_arg(admission.rpm_limit),
            _limit_arg(admission.tpm_limit),
            _limit_arg(admission.budget_micro_usd),
            admission.token_reservation,
            admission.window_seconds * 2,
        ]
        allowed, reason, requests, tokens, spent = await self._admit(keys=[self.prefix + b for b in buckets], args=args)
        return AdmissionResult(bool(allowed), reason or None, int(requests), int(tokens), int(spent))

    async def release(self, admission: Admission) -> None:
        """Give back what an admission counted (its request never went out)."""
        keys = [self.prefix + admission.requests_bucket, self.prefix + admission.tokens_bucket]
        await self._release(keys=keys, args=[admission.token_reservation])

    async def seed_budget(self, bucket: str, spent_micro_usd: int, ttl_seconds: int) -> None:
        """Create a missing budget bucket with the spend recorded elsewhere; never overwrite one that exists."""
        await self._redis.set(self.prefix + bucket, spent_micro_usd, nx=True, ex=ttl_seconds or None)

    async def settle(self, *, tokens_bucket: str, token_delta: int, budget_bucket: str, cost_micro_usd: int) -> None:
        await self._settle(
            keys=[self.prefix + tokens_bucket, self.prefix + budget_bucket], args=[token_delta, cost_micro_usd]
        )

    async def read(self, bucket: str) -> int:
        return int(await self._redis.get(self.prefix + bucket) or 0)

    async def close(self) -> None:
        await self._redis.aclose()


class DatabaseCounters:
    """Counters in the LimitCounter table; each admission is one short transaction with row locks."""

    @staticmethod
    def _ensure_rows(buckets: list[str], expires_at) -> None:
        from usage.models import LimitCounter

        existing = set(LimitCounter.objects.filter(bucket__in=buckets).values_list("bucket", flat=True))
        missing = [LimitCounter(bucket=b, value=0, expires_at=expires_at) for b in buckets if b not in existing]
        if missing:
            LimitCounter.objects.bulk_create(missing, ignore_conflicts=True)

    def _admit_sync(self, admission: Admission) -> AdmissionResult:
        from usage.models import LimitCounter

        expires_at = timezone.now() + timedelta(seconds=admission.window_seconds * 2)
        self._ensure_rows([admission.requests_bucket, admission.tokens_bucket], expires_at)
        buckets = [admission.requests_bucket, admission.tokens_bucket, admission.budget_bucket]
        with transaction.atomic():
            values = dict(
                LimitCounter.objects.select_for_update()
                .filter(bucket__in=buckets)
                .order_by("bucket")  # one lock order for every worker: no deadlocks
                .values_list("bucket", "value")
            )
            if admission.budget_micro_usd is not None and admission.budget_bucket not in values:
                return AdmissionResult(False, BUDGET_UNKNOWN, 0, 0, 0)
            requests = values.get(admission.requests_bucket, 0)
            tokens = values.get(admission.tokens_bucket, 0)
            spent = values.get(admission.budget_bucket, 0)
            refusal = None
            if admission.budget_micro_usd is not None and spent >= admission.budget_micro_usd:
                refusal = "budget"
            elif admission.rpm_limit is not None and requests >= admission.rpm_limit:
                refusal = "requests"
            elif (
                admission.tpm_limit is not None
                and tokens > 0
                and tokens + admission.token_reservation > admission.tpm_limit
            ):
                refusal = "tokens"
            if refusal:
                return AdmissionResult(False, refusal, requests, tokens, spent)
            LimitCounter.objects.filter(bucket=admission.requests_bucket).update(value=F("value") + 1)
            LimitCounter.objects.filter(bucket=admission.tokens_bucket).update(
                value=F("value") + admission.token_reservation
            )
        return AdmissionResult(True, None, requests + 1, tokens + admission.token_reservation, spent)

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
            self._add(admission.requests_bucket, -1)
            self._add(admission.tokens_bucket, -admission.token_reservation)

        await run_in_db_thread(release_sync)

    async def seed_budget(self, bucket: str, spent_micro_usd: int, ttl_seconds: int) -> None:
        """Create a missing budget bucket with the spend recorded elsewhere; never overwrite one that exists."""
        from usage.models import LimitCounter

        expires_at = timezone.now() + timedelta(seconds=ttl_seconds or 10 * 365 * 86400)
        row = LimitCounter(bucket=bucket, value=spent_micro_usd, expires_at=expires_at)
        await run_in_db_thread(LimitCounter.objects.bulk_create, [row], ignore_conflicts=True)

    async def settle(self, *, tokens_bucket: str, token_delta: int, budget_bucket: str, cost_micro_usd: int) -> None:
        """Only existing buckets change: a missing budget bucket is rebuilt from the request log (see Redis)."""

        def settle_sync() -> None:
            self._add(tokens_bucket, token_delta)
            self._add(budget_bucket, cost_micro_usd)

        await run_in_db_thread(settle_sync)

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
