"""Per-deployment rpm/tpm (routing.load): counted per minute, shared through Redis, free without limits."""

import asyncio
import uuid

from routing.load import DeploymentLoad
from routing.policy import ModelPolicy
from tests.usage.conftest import redis_url


class Clock:
    def __init__(self, now: float = 600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def deployment(deployment_id: int, **limits) -> ModelPolicy:
    return ModelPolicy(name="m", litellm_model="openai/m", provider="openai", deployment_id=deployment_id, **limits)


def test_a_deployment_at_its_rpm_is_saturated_until_the_next_minute() -> None:
    clock = Clock()
    load = DeploymentLoad(clock=clock)
    limited, free = deployment(1, rpm=2), deployment(2)

    async def run() -> None:
        for _ in range(2):
            assert load.saturated([limited, free]) == frozenset()
            await load.note_request(limited)
            await load.note_request(free)
        assert load.saturated([limited, free]) == {1}
        clock.now += 60
        assert load.saturated([limited, free]) == frozenset()

    asyncio.run(run())


def test_tokens_an_answer_used_count_against_tpm() -> None:
    clock = Clock()
    load = DeploymentLoad(clock=clock)
    limited = deployment(1, tpm=1000)

    async def run() -> None:
        load.note_tokens(limited, 600)
        assert load.saturated([limited]) == frozenset()
        load.note_tokens(limited, 400)
        assert load.saturated([limited]) == {1}

    asyncio.run(run())


def test_counts_are_shared_between_workers_through_redis() -> None:
    url, prefix = redis_url(), f"test-load-{uuid.uuid4().hex}:"
    clock = Clock(6000.0)
    first, second = (DeploymentLoad(redis_url=url, prefix=prefix, clock=clock) for _ in range(2))
    limited = deployment(7, rpm=3)

    async def run() -> None:
        for _ in range(2):
            await first.note_request(limited)
        await second.note_request(limited)  # the third of the minute, as the shared count tells the second worker
        assert second.saturated([limited]) == {7}
        assert first.saturated([limited]) == frozenset()  # it learns on its own next request
        await first.close()
        await second.close()

    asyncio.run(run())
    import redis

    client = redis.Redis.from_url(url)
    client.delete(*client.keys(prefix + "*"))
