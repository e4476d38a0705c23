"""Deployment health: cooldowns entered after failures, per process and shared through Redis by every worker."""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import redis

from routing.health import DeploymentHealth, DeploymentState, HealthUnavailable, health_from_settings, read_health
from tests.support.tcp_proxy import TcpProxy
from tests.usage.conftest import redis_url

UNREACHABLE_REDIS = "redis://127.0.0.1:1/15"


class Clock:
    """Wall-clock time the test moves forward by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def local_health(clock: Clock, **overrides) -> DeploymentHealth:
    settings = {"failures": 3, "window_seconds": 60, "cooldown_seconds": 30, "max_cooldown_seconds": 300}
    return DeploymentHealth(**{**settings, **overrides}, clock=clock)


def fail(health: DeploymentHealth, deployment_id: int, times: int = 1, retry_after: float | None = None):
    async def failures() -> float | None:
        ends = None
        for _ in range(times):
            ends = await health.record_failure(deployment_id, retry_after=retry_after)
        return ends

    return asyncio.run(failures())


# Per process (no Redis)


def test_a_deployment_cools_down_after_the_threshold_within_the_window(clock):
    health = local_health(clock)
    assert fail(health, 7, times=2) is None
    assert health.cooldowns() == {}
    assert fail(health, 7) == clock.now + 30
    assert health.cooldowns() == {7: clock.now + 30}
    assert fail(health, 8, times=2) is None  # each deployment has its own count
    assert dict(health.cooldowns()) == {7: clock.now + 30}


def test_failures_spread_beyond_the_window_do_not_cool_down(clock):
    health = local_health(clock)
    fail(health, 1, times=2)
    clock.advance(61)
    assert fail(health, 1) is None  # a new window: one failure
    assert fail(health, 1) is None
    assert health.cooldowns() == {}
    assert fail(health, 1) == clock.now + 30


def test_a_cooldown_ends_and_the_count_starts_again(clock):
    health = local_health(clock)
    ends = fail(health, 3, times=3)
    clock.advance(29.9)
    assert health.cooldowns() == {3: ends}
    clock.advance(0.2)
    assert health.cooldowns() == {}
    assert fail(health, 3, times=2) is None  # the cooldown reset the count
    assert fail(health, 3) == clock.now + 30


def test_retry_after_cools_down_at_once_capped_at_the_maximum(clock):
    health = local_health(clock)
    assert fail(health, 1, retry_after=12) == clock.now + 12
    assert fail(health, 2, retry_after=86_400) == clock.now + 300
    assert fail(health, 3, retry_after=0) is None  # "retry now": an ordinary failure
    assert health.cooldowns() == {1: clock.now + 12, 2: clock.now + 300}


def test_a_longer_cooldown_is_never_shortened(clock):
    health = local_health(clock)
    long_end = fail(health, 5, retry_after=200)
    assert fail(health, 5, retry_after=5) == long_end
    assert fail(health, 5, times=3) == long_end  # the threshold's 30 s do not shorten it either
    assert health.cooldowns() == {5: long_end}
    assert fail(health, 5, retry_after=250) == clock.now + 250  # a longer one extends it


def test_a_mapping_handed_out_never_changes_under_its_reader(clock):
    health = local_health(clock, failures=1)
    before = health.cooldowns()
    fail(health, 1)
    assert before == {}
    assert health.cooldowns() == {1: clock.now + 30}
    with pytest.raises(TypeError):
        health.cooldowns()[2] = 0.0  # type: ignore[index]


def test_without_redis_refreshing_reads_nothing_and_health_is_not_readable(clock):
    health = local_health(clock, failures=1)
    fail(health, 1)
    asyncio.run(health.refresh_if_stale())
    assert health.cooldowns() == {1: clock.now + 30}
    assert not health.shared
    assert read_health([1], redis_url=None, prefix="llmproxy:") is None
    health.reset()
    assert health.cooldowns() == {}


def test_settings_build_the_store(settings):
    settings.REDIS_URL = None
    settings.LLMPROXY_COOLDOWN_FAILURES = 2
    settings.LLMPROXY_COOLDOWN_WINDOW_SECONDS = 10.0
    settings.LLMPROXY_COOLDOWN_SECONDS = 7.0
    settings.LLMPROXY_COOLDOWN_MAX_SECONDS = 20.0
    settings.LLMPROXY_HEALTH_REFRESH_SECONDS = 0.1
    health = health_from_settings()
    assert (health.failures, health.window_seconds, health.cooldown_seconds) == (2, 10.0, 7.0)
    assert (health.max_cooldown_seconds, health.refresh_seconds, health.shared) == (20.0, 0.1, False)


# Shared through Redis: two stores stand for two workers (or hosts) with the same REDIS_URL and prefix


@pytest.fixture
def prefix() -> Iterator[str]:
    url = redis_url()
    prefix = f"llmproxy-test-health-{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(url)
    for name in client.scan_iter(match=prefix + "*"):
        client.delete(name)
    client.close()


def shared_health(prefix: str, url: str | None = None, **overrides) -> DeploymentHealth:
    settings = {"failures": 3, "window_seconds": 60, "cooldown_seconds": 30, "max_cooldown_seconds": 300}
    return DeploymentHealth(redis_url=url or redis_url(), prefix=prefix, **{**settings, **overrides})


async def refreshed_until(health: DeploymentHealth, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    await health.refresh_if_stale()
    while not condition(health.cooldowns()):
        assert time.monotonic() < deadline, f"still {dict(health.cooldowns())}"
        await asyncio.sleep(0.02)
        await health.refresh_if_stale()


def test_a_cooldown_entered_by_one_worker_is_seen_by_another(prefix):
    async def scenario() -> None:
        first, second = shared_health(prefix), shared_health(prefix, refresh_seconds=0.1)
        await second.refresh_if_stale()
        assert await first.record_failure(11, retry_after=None) is None
        assert await second.record_failure(11, retry_after=None) is None
        ends = await first.record_failure(11, retry_after=None)  # the third failure of the shared count
        assert ends is not None and abs(ends - (time.time() + 30)) < 1
        assert first.cooldowns() == {11: ends}  # at once in the worker that saw it
        assert second.cooldowns() == {}  # cooldowns() never does I/O: the other worker learns on its refresh
        await refreshed_until(second, lambda view: view == {11: ends})
        await first.close()
        await second.close()

    asyncio.run(scenario())
    assert read_health([11, 12], redis_url=redis_url(), prefix=prefix) == {
        11: DeploymentState(cooling_until=pytest.approx(time.time() + 30, abs=1), recent_failures=0),
        12: DeploymentState(cooling_until=None, recent_failures=0),
    }


def test_the_longer_cooldown_wins_across_workers_and_failures_are_readable(prefix):
    async def scenario() -> tuple[float | None, float | None]:
        first, second = shared_health(prefix), shared_health(prefix)
        long_end = await first.record_failure(4, retry_after=200)
        short_end = await second.record_failure(4, retry_after=5)
        await second.record_failure(9, retry_after=None)
        await second.record_failure(9, retry_after=None)
        await first.close()
        await second.close()
        return long_end, short_end

    long_end, short_end = asyncio.run(scenario())
    assert short_end == long_end
    health = read_health([4, 9], redis_url=redis_url(), prefix=prefix)
    assert health == {
        4: DeploymentState(cooling_until=long_end, recent_failures=0),
        9: DeploymentState(cooling_until=None, recent_failures=2),
    }


def test_the_shared_failure_count_expires_with_its_window(prefix):
    async def scenario() -> float | None:
        health = shared_health(prefix, window_seconds=0.3)
        await health.record_failure(2, retry_after=None)
        await health.record_failure(2, retry_after=None)
        deadline = time.monotonic() + 5
        while read_health([2], redis_url=redis_url(), prefix=prefix)[2].recent_failures:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        ends = await health.record_failure(2, retry_after=None)  # one failure in a fresh window
        await health.close()
        return ends

    assert asyncio.run(scenario()) is None


def test_reset_forgets_the_shared_state(prefix):
    async def scenario() -> DeploymentHealth:
        health = shared_health(prefix, refresh_seconds=0)
        await health.record_failure(1, retry_after=60)
        await health.record_failure(2, retry_after=None)
        await health.close()
        return health

    health = asyncio.run(scenario())
    health.reset()
    assert health.cooldowns() == {}
    assert redis.Redis.from_url(redis_url()).keys(prefix + "*") == []


def test_an_unreachable_redis_never_fails_a_request_and_is_logged_once(caplog):
    async def scenario() -> DeploymentHealth:
        health = DeploymentHealth(redis_url=UNREACHABLE_REDIS, refresh_seconds=0, outage_retry_seconds=0)
        for _ in range(3):
            await health.refresh_if_stale()
        assert await health.record_failure(1, retry_after=None) is None
        assert await health.record_failure(1, retry_after=None) is None
        ends = await health.record_failure(1, retry_after=None)  # counted in this process instead
        assert health.cooldowns() == {1: ends}
        await health.refresh_if_stale()
        assert health.cooldowns() == {1: ends}
        await health.close()
        return health

    with caplog.at_level(logging.WARNING, logger="routing.health"):
        asyncio.run(scenario())
    assert len(caplog.records) == 1
    assert "Redis did not answer" in caplog.records[0].getMessage()
    with pytest.raises(HealthUnavailable):
        read_health([1], redis_url=UNREACHABLE_REDIS, prefix="llmproxy:")


def test_losing_redis_keeps_the_last_view_and_its_return_shares_again(prefix, caplog):
    target = urlparse(redis_url())

    async def scenario(proxy: TcpProxy) -> None:
        url = f"redis://127.0.0.1:{proxy.port}{target.path}"
        health = shared_health(prefix, url, refresh_seconds=0, outage_retry_seconds=0)
        other = shared_health(prefix)
        shared_end = await other.record_failure(1, retry_after=120)
        await refreshed_until(health, lambda view: 1 in view)
        proxy.cut()
        await health.refresh_if_stale()
        assert health.cooldowns() == {1: shared_end}  # the last view is kept
        local_end = await health.record_failure(2, retry_after=60)  # counted in this process
        assert health.cooldowns() == {1: shared_end, 2: local_end}
        proxy.restore()
        await refreshed_until(health, lambda view: view == {1: shared_end, 2: local_end})
        await other.record_failure(3, retry_after=90)
        await refreshed_until(health, lambda view: set(view) == {1, 2, 3})
        await health.close()
        await other.close()

    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    with proxy, caplog.at_level(logging.WARNING, logger="routing.health"):
        asyncio.run(scenario(proxy))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and "did not answer" in messages[0] and "answers again" in messages[1]
