import asyncio
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import pytest
import redis

from tests.conftest import database_url_for_subprocess
from tests.support.server_process import GatewayProcess


def wait_for_rows(count: int, timeout: float = 10.0) -> list:
    """The request log is written in the background: wait until `count` rows are there."""
    from usage.models import RequestLog

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(RequestLog.objects.order_by("created_at", "id"))
        if len(rows) >= count:
            time.sleep(0.2)  # and make sure no extra row follows
            return list(RequestLog.objects.order_by("created_at", "id"))
        time.sleep(0.05)
    return list(RequestLog.objects.order_by("created_at", "id"))


@pytest.fixture(params=["database", "redis"])
def limit_backend(request, live_gateway, transactional_db):
    """Run a limits test once with database counters and once with Redis counters."""
    from api.gateway import gateway
    from usage.counters import DatabaseCounters, RedisCounters
    from usage.limits import LimitKeeper

    previous = gateway.limits
    if request.param == "redis":
        url = redis_url()
        counters = RedisCounters(url, prefix=f"llmproxy-test-{uuid.uuid4().hex}:")
    else:
        counters = DatabaseCounters()
    gateway.limits = LimitKeeper(counters, recorder=gateway.usage)
    yield request.param
    gateway.limits = previous


def redis_url() -> str:
    """Redis for the tests: skipped where none runs, except in CI, where a missing Redis fails the run."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {url}")
    return url


@pytest.fixture
def subprocess_database_url(transactional_db) -> str:
    return database_url_for_subprocess()


def wait_for_minute_window(margin: float = 15.0) -> None:
    """Rate windows are calendar minutes: start a limits test far enough from a window edge."""
    seconds = time.time() % 60
    if seconds > 60 - margin:
        time.sleep(60 - seconds + 0.2)


@contextmanager
def two_gateways(database_url: str, backend: str) -> Iterator[list[GatewayProcess]]:
    """Two gateway processes sharing the database and, for backend "redis", one Redis (under a fresh prefix) for
    their limit counters; yielded early enough in a minute window for a burst."""
    env = {"REDIS_URL": ""}
    if backend == "redis":
        env = {"REDIS_URL": redis_url(), "LLMPROXY_REDIS_PREFIX": f"llmproxy-test-{uuid.uuid4().hex}:"}
    servers = [GatewayProcess(database_url, **env).start() for _ in range(2)]
    try:
        wait_for_minute_window()
        yield servers
    finally:
        for server in servers:
            server.stop()


def burst(servers: Sequence[GatewayProcess], keys: Sequence[str], count: int) -> list[httpx.Response]:
    """`count` chat requests sent at once, alternating between the servers, and between the keys every two."""

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as http:
            return await asyncio.gather(*(
                http.post(f"{servers[i % len(servers)].url}/v1/chat/completions",
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]},
                          headers={"Authorization": f"Bearer {keys[(i // len(servers)) % len(keys)]}"})
                for i in range(count)
            ))  # fmt: skip

    return asyncio.run(send_all())


def counter_value(bucket: str) -> int | None:
    """A limit counter in the store the live gateway uses now (None: the bucket does not exist)."""
    from api.gateway import gateway
    from usage.counters import RedisCounters, read_counter

    counters = gateway.limits.counters
    if isinstance(counters, RedisCounters):
        return read_counter(bucket, redis_url=redis_url(), prefix=counters.prefix)
    return read_counter(bucket, redis_url=None, prefix="")


def budget_spent_micro_usd(key_name: str) -> int | None:
    """The spend counted against a key's current budget, once the gateway has settled what it answered."""
    from django.utils import timezone

    from api.gateway import gateway
    from keys.lookup import KeyRecord
    from keys.models import ApiKey
    from usage.limits import budget_bucket

    gateway.drain_threadsafe()
    bucket, _ = budget_bucket(KeyRecord.from_model(ApiKey.objects.get(name=key_name)), timezone.now())
    return counter_value(bucket)


def lose_counters() -> None:
    """What a Redis restart does (or turning REDIS_URL on): every counter of the live gateway's store is gone."""
    from api.gateway import gateway
    from usage.counters import RedisCounters
    from usage.models import LimitCounter

    counters = gateway.limits.counters
    if isinstance(counters, RedisCounters):
        client = redis.Redis.from_url(redis_url())
        for name in client.scan_iter(match=counters.prefix + "*"):
            client.delete(name)
        client.close()
    else:
        LimitCounter.objects.all().delete()
