"""The per-process state of the hot path: the policy store and the key cache, each with one owner."""

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from keys.lookup import KeyCache, KeyRecord
from routing.health import health_from_settings
from routing.load import load_from_settings
from routing.policy import PolicySnapshot, PolicyStore
from usage.limits import LimitKeeper, counters_from_settings
from usage.recorder import UsageRecorder


@dataclass(frozen=True)
class Caller:
    key: KeyRecord
    policy: PolicySnapshot


class Gateway:
    def __init__(self) -> None:
        self.policy = PolicyStore(refresh_seconds=settings.LLMPROXY_POLICY_REFRESH_SECONDS)
        self.keys = KeyCache(last_used_resolution=timedelta(seconds=settings.LLMPROXY_LAST_USED_RESOLUTION_SECONDS))
        self.usage = UsageRecorder(
            interval=settings.LLMPROXY_USAGE_FLUSH_SECONDS,
            batch_size=settings.LLMPROXY_USAGE_BATCH_SIZE,
            max_buffered=settings.LLMPROXY_USAGE_MAX_BUFFERED,
        )
        self.health = health_from_settings()  # deployment cooldowns, shared through Redis when configured
        self.load = load_from_settings()  # per-deployment rpm/tpm, for deployments that set them
        self.limits = LimitKeeper(
            counters_from_settings(settings.REDIS_URL, settings.LLMPROXY_REDIS_PREFIX), recorder=self.usage
        )

    async def identify(self, token: str | None) -> Caller:
        policy = await self.policy.current()
        key = await self.keys.authenticate(token, version=policy.version)
        return Caller(key=key, policy=policy)

    async def shutdown(self) -> None:
        """Flush what is buffered (ASGI lifespan shutdown): no usage row is lost on a graceful stop."""
        await self.limits.drain()
        await self.keys.drain()
        await self.usage.close()
        await self.health.close()
        await self.load.close()
        from api.relay import relay

        await relay.close()

    def drain_threadsafe(self, timeout: float = 10.0) -> None:
        """From another thread (tests): wait until everything the server buffered is written."""
        loop = self.usage.loop
        if loop is None or loop.is_closed():
            return

        async def drain() -> None:
            await self.limits.drain()
            await self.keys.drain()
            await self.usage.flush()

        asyncio.run_coroutine_threadsafe(drain(), loop).result(timeout)

    def reset(self) -> None:
        """Forget every cached key and policy (tests)."""
        self.policy.invalidate()
        self.keys.clear()
        self.health.reset()
        self.load.reset()


gateway = Gateway()
