"""With Redis, a finished request is charged by the worker's next admission (one round trip per request), or in a
batch shortly after when no request follows; either way the charge lands, and a drain writes what is pending."""

import asyncio
import time
import uuid
from decimal import Decimal

import pytest
import redis

from tests.usage.conftest import redis_url

TEAM_BUDGET = Decimal(100)


def team_key():
    from keys.lookup import KeyRecord
    from teams.records import TeamRecord

    team = TeamRecord(id=7001, name="batching", allowed_models=None, rpm_limit=1000, tpm_limit=10**7,
                      max_budget_usd=TEAM_BUDGET)  # fmt: skip
    return KeyRecord(id=7002, name="batching-key", key_hash="x", expires_at=None, revoked=False, allowed_models=None,
                     team=team)  # fmt: skip


class Store:
    """A LimitKeeper on real Redis under a prefix of its own, and a plain client reading its buckets."""

    def __init__(self) -> None:
        from usage.counters import RedisCounters
        from usage.limits import LimitKeeper

        self.prefix = f"llmproxy-test-{uuid.uuid4().hex}:"
        self.keeper = LimitKeeper(RedisCounters(redis_url(), prefix=self.prefix))
        self.reader = redis.Redis.from_url(redis_url(), decode_responses=True)

    async def admit(self):
        return await self.keeper.admit(team_key(), token_reservation=100)

    def bucket(self, hold, kind: str) -> int:
        buckets = hold.admission.subjects[0]
        return int(self.reader.get(self.prefix + getattr(buckets, kind)) or 0)

    def seed_budget(self) -> None:
        from django.utils import timezone

        from usage.limits import budget_bucket

        bucket, _ = budget_bucket(team_key().team, timezone.now())
        self.reader.set(self.prefix + bucket, 0)


def test_the_next_admission_charges_the_finished_request(monkeypatch):
    from usage import limits

    monkeypatch.setattr(limits, "SETTLE_DELAY_SECONDS", 3600)  # no batch: only the admission can charge it
    store = Store()
    store.seed_budget()

    async def scenario() -> tuple[int, int, int, int]:
        first = await store.admit()
        store.keeper.settle_later(first, tokens_used=30, cost=Decimal("0.25"))
        before = store.bucket(first, "budget"), store.bucket(first, "tokens")
        await store.admit()
        return *before, store.bucket(first, "budget"), store.bucket(first, "tokens")

    budget_before, tokens_before, budget_after, tokens_after = asyncio.run(scenario())
    assert (budget_before, tokens_before) == (0, 100)  # not charged yet: the reservation still holds
    assert budget_after == 250_000  # $0.25 in micro-dollars, charged by the second admission
    assert tokens_after == 30 + 100  # the first request's real tokens, plus the second one's reservation


def test_without_a_next_request_the_batch_is_charged_shortly_after():
    store = Store()
    store.seed_budget()

    async def scenario() -> tuple[int, int]:
        holds = [await store.admit() for _ in range(3)]
        for hold in holds:
            store.keeper.settle_later(hold, tokens_used=10, cost=Decimal("0.5"))
        deadline = time.monotonic() + 2
        while store.bucket(holds[0], "budget") < 1_500_000 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return store.bucket(holds[0], "budget"), store.bucket(holds[0], "tokens")

    budget, tokens = asyncio.run(scenario())
    assert budget == 1_500_000
    assert tokens == 30


def test_drain_charges_what_is_pending(monkeypatch):
    from usage import limits

    monkeypatch.setattr(limits, "SETTLE_DELAY_SECONDS", 3600)
    store = Store()
    store.seed_budget()

    async def scenario() -> int:
        hold = await store.admit()
        store.keeper.settle_later(hold, tokens_used=10, cost=Decimal("1"))
        await store.keeper.drain()
        return store.bucket(hold, "budget")

    assert asyncio.run(scenario()) == 1_000_000


def test_a_spent_budget_refuses_the_very_next_admission(monkeypatch):
    """The charge and the check are one script: the request after the one that spent the budget is refused."""
    from usage import limits
    from usage.limits import LimitExceeded

    monkeypatch.setattr(limits, "SETTLE_DELAY_SECONDS", 3600)
    store = Store()
    store.seed_budget()

    async def scenario() -> None:
        hold = await store.admit()
        store.keeper.settle_later(hold, tokens_used=10, cost=TEAM_BUDGET)
        await store.admit()

    with pytest.raises(LimitExceeded, match="team 'batching' has spent its budget"):
        asyncio.run(scenario())
