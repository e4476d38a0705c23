"""Per-deployment requests and tokens per minute, for deployments with their own `rpm` / `tpm` only.

A deployment at its limit for the current minute is left out of the attempt order (routing.deployments), as a
provider's quota would refuse it anyway. Counting costs nothing for deployments without limits. With Redis the
counts are shared (one INCR per request, one INCRBY per answer, for limited deployments only) and each worker sees
the shared count as of its own last request to that deployment: the limit holds across workers to within the
requests in flight. Without Redis the counts are per process.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from routing.policy import ModelPolicy

logger = logging.getLogger(__name__)

LOAD_KEY = "deployment-load:"  # + "{id}:{minute}:r" (requests) or ":t" (tokens)
KEEP_SECONDS = 120


class DeploymentLoad:
    def __init__(self, *, redis_url: str | None = None, prefix: str = "llmproxy:",
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._prefix = prefix + LOAD_KEY
        self._clock = clock
        self._redis: Any = None
        if redis_url:
            import redis.asyncio as redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._minute = -1
        self._requests: dict[int, int] = {}
        self._tokens: dict[int, int] = {}
        self._pending: set[asyncio.Task] = set()

    def _current(self) -> int:
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute, self._requests, self._tokens = minute, {}, {}
        return minute

    def saturated(self, deployments: Iterable[ModelPolicy]) -> frozenset[int]:
        """Ids of the limited deployments that reached their rpm or tpm this minute (no I/O)."""
        limited = [deployment for deployment in deployments if deployment.rpm or deployment.tpm]
        if not limited:
            return frozenset()
        self._current()
        return frozenset(
            deployment.deployment_id
            for deployment in limited
            if (deployment.rpm and self._requests.get(deployment.deployment_id, 0) >= deployment.rpm)
            or (deployment.tpm and self._tokens.get(deployment.deployment_id, 0) >= deployment.tpm)
        )

    async def note_request(self, deployment: ModelPolicy) -> None:
        if not (deployment.rpm or deployment.tpm):
            return
        minute = self._current()
        deployment_id = deployment.deployment_id
        self._requests[deployment_id] = self._requests.get(deployment_id, 0) + 1
        if self._redis is None:
            return
        try:
            key = f"{self._prefix}{deployment_id}:{minute}:"
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key + "r").expire(key + "r", KEEP_SECONDS).get(key + "t")
                requests, _, tokens = await pipe.execute()
        except Exception as exc:  # Redis away: this process's own count stands in
            logger.warning("deployment load not shared (Redis: %s)", type(exc).__name__)
            return
        if minute == self._minute:
            self._requests[deployment_id] = max(self._requests.get(deployment_id, 0), int(requests))
            self._tokens[deployment_id] = max(self._tokens.get(deployment_id, 0), int(tokens or 0))

    def note_tokens(self, deployment: ModelPolicy, tokens: int) -> None:
        """The tokens an answer used (from the request's account: synchronous, shared in the background)."""
        if not deployment.tpm or tokens <= 0:
            return
        minute = self._current()
        self._tokens[deployment.deployment_id] = self._tokens.get(deployment.deployment_id, 0) + tokens
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._share_tokens(deployment.deployment_id, minute, tokens))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _share_tokens(self, deployment_id: int, minute: int, tokens: int) -> None:
        key = f"{self._prefix}{deployment_id}:{minute}:t"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                await pipe.incrby(key, tokens).expire(key, KEEP_SECONDS).execute()
        except Exception as exc:
            logger.warning("deployment load not shared (Redis: %s)", type(exc).__name__)

    def reset(self) -> None:
        self._minute, self._requests, self._tokens = -1, {}, {}

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def load_from_settings() -> DeploymentLoad:
    from django.conf import settings

    return DeploymentLoad(redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX)
