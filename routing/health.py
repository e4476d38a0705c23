"""Deployment health: which deployments are cooling down after failing, per process or shared through Redis.

The hot path reads `cooldowns()`, a local mapping with no I/O; `refresh_if_stale()` brings in what other workers
and hosts recorded, at most every `refresh_seconds`. A failure is counted with one Lua script, so every worker
agrees on the count and on the cooldown. Redis going away never fails a request: this process keeps its last view
and counts its own failures until Redis answers again.

Cooldown ends are wall-clock times (`time.time()`), comparable across hosts; staleness is measured on
`time.monotonic()`.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

logger = logging.getLogger(__name__)

COOLDOWNS_KEY = "deployment-cooldowns"  # one sorted set: member = deployment id, score = when its cooldown ends
FAILURES_KEY = "deployment-failures:"  # + deployment id: failures within the current window
PRUNE_EVERY_SECONDS = 60.0
PRUNE_GRACE_SECONDS = 60.0  # ends this far in the past are removed: a host whose clock runs ahead removes nothing live
REDIS_TIMEOUT_SECONDS = 0.5

# Needs Redis 7.0+ (PEXPIRE ... NX). ZADD GT: a longer cooldown another worker entered is never shortened.
# The end is returned as ZSCORE's string: a Lua number would come back truncated to an integer.
RECORD_FAILURE_SCRIPT = """
local threshold = tonumber(ARGV[2])
local window_ms = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local seconds = tonumber(ARGV[5])
local retry_after = tonumber(ARGV[6])
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], window_ms, 'NX')
if retry_after > 0 then
  seconds = retry_after
elseif failures < threshold then
  return {failures, false}
end
redis.call('ZADD', KEYS[2], 'GT', now + seconds, ARGV[1])
redis.call('DEL', KEYS[1])
local ends = redis.call('ZSCORE', KEYS[2], ARGV[1])
local keep = math.ceil(tonumber(ends) - now) + 60
if redis.call('TTL', KEYS[2]) < keep then redis.call('EXPIRE', KEYS[2], keep) end
return {failures, ends}
"""


@dataclass(frozen=True)
class DeploymentState:
    cooling_until: float | None  # time.time() when the cooldown ends; None: not cooling down
    recent_failures: int  # failures counted in the current window (a cooldown starts the count again)


class HealthUnavailable(Exception):
    """Redis holds the shared health but did not answer."""


@dataclass
class _Window:
    ends_at: float
    failures: int


class DeploymentHealth:
    def __init__(
        self,
        *,
        redis_url: str | None = None,
        prefix: str = "llmproxy:",
        failures: int = 3,
        window_seconds: float = 60.0,
        cooldown_seconds: float = 30.0,
        max_cooldown_seconds: float = 300.0,
        refresh_seconds: float = 0.5,
        outage_retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.failures = max(1, failures)
        self.window_seconds = window_seconds
        self.cooldown_seconds = cooldown_seconds
        self.max_cooldown_seconds = max_cooldown_seconds
        self.refresh_seconds = refresh_seconds
        self.outage_retry_seconds = outage_retry_seconds  # each try during an outage may wait for a timeout
        self.clock = clock
        self._view: Mapping[int, float] = MappingProxyType({})  # replaced, never changed: a caller's copy holds
        self._earliest_end = float("inf")
        self._own: dict[int, float] = {}  # cooldowns this process entered, merged into every view read from Redis
        self._windows: dict[int, _Window] = {}  # failure counts when there is no Redis (or it is down)
        self._next_refresh = 0.0  # time.monotonic()
        self._next_prune = 0.0
        self._refreshing = False
        self._outage_until: float | None = None  # time.monotonic() of the next try while Redis is unreachable
        self._redis = None
        self._record_script = None
        if redis_url:
            import redis.asyncio as redis

            self._redis = redis.Redis.from_url(
                redis_url,
                decode_responses=True,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._record_script = self._redis.register_script(RECORD_FAILURE_SCRIPT)

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def cooldowns(self) -> Mapping[int, float]:
        """Deployment id -> when its cooldown ends, for those cooling down now. No I/O; free when all are healthy."""
        if self._view and self._earliest_end <= self.clock():
            self._publish(self._view)
        return self._view

    async def refresh_if_stale(self) -> None:
        """Read the shared cooldowns, at most every refresh_seconds; without Redis there is nothing to read."""
        if self._redis is None:
            return
        now = time.monotonic()
        if now < self._next_refresh or self._refreshing or not self._redis_worth_trying(now):
            return
        self._next_refresh = now + self.refresh_seconds
        self._refreshing = True
        try:
            wall = self.clock()
            async with self._redis.pipeline(transaction=False) as pipe:
                if now >= self._next_prune:
                    pipe.zremrangebyscore(self._cooldowns_key, "-inf", wall - PRUNE_GRACE_SECONDS)
                pipe.zrangebyscore(self._cooldowns_key, wall, "+inf", withscores=True)
                *_, members = await pipe.execute()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY_SECONDS
            self._redis_answered()
            self._publish({int(member): float(ends) for member, ends in members})
        except Exception as exc:  # a Redis outage (or anything else here) must never fail the request that refreshed
            self._redis_failed(exc)
        finally:
            self._refreshing = False

    async def record_failure(self, deployment_id: int, *, retry_after: float | None) -> float | None:
        """Count a retryable failure; the end of the cooldown it started (or extended), None if none started.

        `retry_after` (what the provider asked for, capped at max_cooldown_seconds) starts a cooldown at once; a
        value of 0 or less counts as an ordinary failure.
        """
        now = self.clock()
        retry_after = self._capped(retry_after)
        ends: float | None = None
        if self._redis is not None and self._redis_worth_trying(time.monotonic()):
            try:
                ends = await self._record_in_redis(deployment_id, retry_after, now)
            except Exception as exc:  # counted locally instead; the caller goes on failing over
                self._redis_failed(exc)
                ends = self._record_locally(deployment_id, retry_after, now)
            else:
                self._redis_answered()
        else:
            ends = self._record_locally(deployment_id, retry_after, now)
        if ends is not None:
            self._own = {k: v for k, v in self._own.items() if v > now}
            self._own[deployment_id] = max(ends, self._own.get(deployment_id, 0.0))
            self._publish({**self._view, deployment_id: max(ends, self._view.get(deployment_id, 0.0))})
        return ends

    def reset(self) -> None:
        """Forget every failure and cooldown (tests): this process's, and with Redis the shared ones."""
        self._windows.clear()
        self._own.clear()
        self._publish({})
        self._next_refresh = 0.0
        self._outage_until = None
        if self.redis_url:
            client = _sync_client(self.redis_url)
            try:
                names = [self._cooldowns_key, *client.scan_iter(match=self.prefix + FAILURES_KEY + "*")]
                client.delete(*names)
            finally:
                client.close()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def _cooldowns_key(self) -> str:
        return self.prefix + COOLDOWNS_KEY

    def _capped(self, retry_after: float | None) -> float:
        if retry_after is None or retry_after <= 0:
            return 0.0
        return min(float(retry_after), self.max_cooldown_seconds)

    async def _record_in_redis(self, deployment_id: int, retry_after: float, now: float) -> float | None:
        keys = [self.prefix + FAILURES_KEY + str(deployment_id), self._cooldowns_key]
        args = [deployment_id, self.failures, max(1, round(self.window_seconds * 1000))]
        args += [repr(now), repr(float(self.cooldown_seconds)), repr(retry_after)]
        _, ends = await self._record_script(keys=keys, args=args)
        return float(ends) if ends else None

    def _record_locally(self, deployment_id: int, retry_after: float, now: float) -> float | None:
        window = self._windows.get(deployment_id)
        if window is None or window.ends_at <= now:
            window = self._windows[deployment_id] = _Window(ends_at=now + self.window_seconds, failures=0)
        window.failures += 1
        if retry_after > 0:
            seconds = retry_after
        elif window.failures >= self.failures:
            seconds = self.cooldown_seconds
        else:
            return None
        del self._windows[deployment_id]
        return max(now + seconds, self._view.get(deployment_id, 0.0))  # as ZADD GT: never shortened

    def _publish(self, cooldowns: Mapping[int, float]) -> None:
        now = self.clock()
        merged = {k: v for k, v in cooldowns.items() if v > now}
        for deployment_id, ends in self._own.items():
            if ends > now and ends > merged.get(deployment_id, 0.0):
                merged[deployment_id] = ends
        self._earliest_end = min(merged.values(), default=float("inf"))
        self._view = MappingProxyType(merged)

    def _redis_worth_trying(self, now_monotonic: float) -> bool:
        return self._outage_until is None or now_monotonic >= self._outage_until

    def _redis_failed(self, exc: Exception) -> None:
        if self._outage_until is None:
            logger.warning(
                "deployment health: Redis did not answer (%s: %s); each process keeps its own cooldowns until it does",
                type(exc).__name__,
                exc,
            )
        self._outage_until = time.monotonic() + self.outage_retry_seconds

    def _redis_answered(self) -> None:
        if self._outage_until is not None:
            logger.warning("deployment health: Redis answers again; cooldowns are shared again")
            self._outage_until = None


def health_from_settings() -> DeploymentHealth:
    from django.conf import settings

    return DeploymentHealth(
        redis_url=settings.REDIS_URL,
        prefix=settings.LLMPROXY_REDIS_PREFIX,
        failures=settings.LLMPROXY_COOLDOWN_FAILURES,
        window_seconds=settings.LLMPROXY_COOLDOWN_WINDOW_SECONDS,
        cooldown_seconds=settings.LLMPROXY_COOLDOWN_SECONDS,
        max_cooldown_seconds=settings.LLMPROXY_COOLDOWN_MAX_SECONDS,
        refresh_seconds=settings.LLMPROXY_HEALTH_REFRESH_SECONDS,
    )


def read_health(ids: Iterable[int], *, redis_url: str | None, prefix: str) -> dict[int, DeploymentState] | None:
    """The shared health of some deployments, read synchronously (the admin, `manage.py deployment_health`).

    None without Redis: each process then keeps its own health, which no other process can read.
    Raises HealthUnavailable when Redis does not answer.
    """
    if not redis_url:
        return None
    ids = list(ids)
    if not ids:
        return {}
    import redis

    client = _sync_client(redis_url)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.zmscore(prefix + COOLDOWNS_KEY, [str(i) for i in ids])
            pipe.mget([prefix + FAILURES_KEY + str(i) for i in ids])
            ends, failures = pipe.execute()
    except redis.RedisError as exc:
        raise HealthUnavailable(f"Redis did not answer: {exc}") from exc
    finally:
        client.close()
    now = time.time()
    return {
        deployment_id: DeploymentState(
            cooling_until=float(end) if end is not None and float(end) > now else None,
            recent_failures=int(count or 0),
        )
        for deployment_id, end, count in zip(ids, ends, failures, strict=True)
    }


def _sync_client(redis_url: str):
    import redis

    return redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
