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


ADMIT_SCRIPT = """
local rpm_limit = tonumber(ARGV[1])
local tpm_limit = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
if budget >= 0 and spent >= budget then return {0, 'budget', requests, tokens, spent} end
if rpm_limit >= 0 and requests >= rpm_limit then return {0, 'requests', requests, tokens, spent} end
if tpm_limit >= 0 and tokens + reserve > tpm_limit and tokens > 0 then return {0, 'tokens', requests, tokens, spent} end
requests = redis.call('INCR', KEYS[1])
if requests == 1 then redis.call('EXPIRE', KEYS[1], ttl) end
tokens = redis.call('INCRBY', KEYS[2], reserve)
if tokens == reserve then redis.call('EXPIRE', KEYS[2], ttl) end
return {1, '', requests, tokens, spent}
"""

SETTLE_SCRIPT = """
if tonumber(ARGV[1]) ~= 0 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
if tonumber(ARGV[2]) ~= 0 then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[3], 'NX') end
end
return 1
"""


def _limit_arg(limit: int | None) -> int:
    return -1 if limit is None else limit


class RedisCounters:
    def __init__(self, url: str, *, prefix: str = "llmproxy:") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._admit = self._redis.register_script(ADMIT_SCRIPT)
        self._settle = self._redis.register_script(SETTLE_SCRIPT)

    async def admit(self, admission: Admission) -> AdmissionResult:
        keys = [self._prefix + b for b in (admission.requests_bucket, admission.tokens_bucket, admission.budget_bucket)]
        args = [
            _limit_arg(admission.rpm_limit),
            _limit_arg(admission.tpm_limit),
            _limit_arg(admission.budget_micro_usd),
            admission.token_reservation,
            admission.window_seconds * 2,
        ]
        allowed, reason, requests, tokens, spent = await self._admit(keys=keys, args=args)
        return AdmissionResult(bool(allowed), reason or None, int(requests), int(tokens), int(spent))

    async def settle(self, *, tokens_bucket: str, token_delta: int, budget_bucket: str, cost_micro_usd: int,
                     budget_ttl_seconds: int) -> None:  # fmt: skip
        await self._settle(
            keys=[self._prefix + tokens_bucket, self._prefix + budget_bucket],
            args=[token_delta, cost_micro_usd, budget_ttl_seconds],
        )

    async def read(self, bucket: str) -> int:
        return int(await self._redis.get(self._prefix + bucket) or 0)

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
        buckets = [admission.requests_bucket, admission.tokens_bucket, admission.budget_bucket]
        self._ensure_rows(buckets, expires_at)
        with transaction.atomic():
            values = dict(
                LimitCounter.objects.select_for_update()
                .filter(bucket__in=buckets)
                .order_by("bucket")  # one lock order for every worker: no deadlocks
                .values_list("bucket", "value")
            )
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

    def _settle_sync(self, tokens_bucket: str, token_delta: int, budget_bucket: str, cost_micro_usd: int,
                     budget_ttl_seconds: int) -> None:  # fmt: skip
        from usage.models import LimitCounter

        if token_delta:
            LimitCounter.objects.filter(bucket=tokens_bucket).update(value=F("value") + token_delta)
        if cost_micro_usd:
            expires_at = timezone.now() + timedelta(seconds=budget_ttl_seconds or 10 * 365 * 86400)
            self._ensure_rows([budget_bucket], expires_at)
            LimitCounter.objects.filter(bucket=budget_bucket).update(value=F("value") + cost_micro_usd)

    async def settle(self, *, tokens_bucket: str, token_delta: int, budget_bucket: str, cost_micro_usd: int,
                     budget_ttl_seconds: int) -> None:  # fmt: skip
        await run_in_db_thread(
            self._settle_sync, tokens_bucket, token_delta, budget_bucket, cost_micro_usd, budget_ttl_seconds
        )

    async def read(self, bucket: str) -> int:
        from usage.models import LimitCounter

        return await run_in_db_thread(
            lambda: LimitCounter.objects.filter(bucket=bucket).values_list("value", flat=True).first() or 0
        )

    async def close(self) -> None:
        return None
