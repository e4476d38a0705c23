"""More requests at once than Redis connections: they wait for a connection, none is refused (the bench once saw
503s from redis-py's "Too many connections" at 64 concurrent team requests)."""

import asyncio
import uuid

from tests.usage.conftest import redis_url
from usage.counters import Admission, Buckets, RedisCounters


def test_a_burst_larger_than_the_pool_waits_for_connections_instead_of_failing() -> None:
    prefix = f"test-pool-{uuid.uuid4().hex}:"
    counters = RedisCounters(redis_url(), prefix=prefix, max_connections=2)
    buckets = Buckets(requests="rpm:1:0", tokens="tpm:1:0", budget="budget:1:total", rpm_limit=1000,
                      tpm_limit=None, budget_micro_usd=None)  # fmt: skip
    admission = Admission(subjects=(buckets,), token_reservation=10)

    async def burst() -> list[bool]:
        try:
            results = await asyncio.gather(*(counters.admit(admission) for _ in range(50)))
            return [result.allowed for result in results]
        finally:
            await counters.close()

    assert asyncio.run(burst()) == [True] * 50
    import redis

    client = redis.Redis.from_url(redis_url())
    assert int(client.get(prefix + "rpm:1:0")) == 50
    client.delete(*client.keys(prefix + "*"))
