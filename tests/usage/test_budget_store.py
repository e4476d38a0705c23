"""Budgets and counters in the store: spend survives losing the store, the key page shows what enforcement uses,
and no counter leaks (an expired minute settled late, a client gone during admission)."""

import asyncio
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlparse

import httpx
import pytest
import redis

from tests.usage.conftest import lose_counters, redis_url, wait_for_minute_window, wait_for_rows

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]


def post(gateway_url: str, key: str, timeout: float = 30, **body) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO, **body},
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
    )


def store(kind: str, prefix: str):
    from usage.counters import DatabaseCounters, RedisCounters

    return RedisCounters(redis_url(), prefix=prefix) if kind == "redis" else DatabaseCounters()


def key_record(name: str):
    from keys.lookup import KeyRecord
    from keys.models import ApiKey

    return KeyRecord.from_model(ApiKey.objects.get(name=name))


# Item 12: a budget survives losing the counter store


def test_spend_survives_losing_the_counter_store(gateway_url, fake_provider, limit_backend):
    from keys.services import create_api_key
    from routing.services import create_model

    create_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base)
    key = create_api_key(name="spender", max_budget_usd="0.00001", budget_period="day").plaintext
    assert post(gateway_url, key, model="gpt-4o").status_code == 200  # ~$0.000055: the budget is spent
    wait_for_rows(1)
    lose_counters()  # a Redis restart, or REDIS_URL switched on
    refused = post(gateway_url, key, model="gpt-4o")
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "insufficient_quota"


@pytest.mark.parametrize("kind", ["database", "redis"])
def test_a_rebuilt_budget_counts_the_period_and_the_rows_not_written_yet(transactional_db, kind):
    from django.utils import timezone

    from keys.services import create_api_key
    from usage.limits import LimitExceeded, LimitKeeper, budget_bucket
    from usage.models import DailyUsage
    from usage.recorder import UsageRecorder

    create_api_key(name="rebuilt", max_budget_usd="2.5", budget_period="month")
    key = key_record("rebuilt")
    now = timezone.now()
    this_month, last_month = now.date().replace(day=1), now.date().replace(day=1) - timedelta(days=1)
    for day, cost in ((this_month, "2"), (last_month, "100")):
        DailyUsage.objects.create(day=day, key_name="rebuilt", model="m", api_key_id=key.id, cost_usd=Decimal(cost))
    counters = store(kind, f"llmproxy-test-{uuid.uuid4().hex}:")

    async def scenario() -> int | None:
        recorder = UsageRecorder(interval=3600, batch_size=1_000_000)
        recorder.record({"api_key_id": key.id, "created_at": now, "cost_usd": Decimal("0.75")})  # not written yet
        keeper = LimitKeeper(counters, recorder=recorder)
        with pytest.raises(LimitExceeded):  # $2 + $0.75 spent this month, of $2.50
            await keeper.admit(key, token_reservation=10)
        bucket, _ = budget_bucket(key, now)
        spent = await counters.read(bucket)
        await counters.close()
        return spent

    assert asyncio.run(scenario()) == 2_750_000


@pytest.mark.parametrize("kind", ["database", "redis"])
def test_the_key_page_shows_the_budget_enforcement_uses(admin_client, settings, kind):
    from django.utils import timezone

    from keys.models import ApiKey
    from keys.services import create_api_key
    from usage.limits import budget_bucket
    from usage.models import LimitCounter

    create_api_key(name="shown", max_budget_usd="10", budget_period="day")
    bucket, _ = budget_bucket(key_record("shown"), timezone.now())
    if kind == "redis":
        settings.REDIS_URL, settings.LLMPROXY_REDIS_PREFIX = redis_url(), f"llmproxy-test-{uuid.uuid4().hex}:"
        redis.Redis.from_url(redis_url()).set(settings.LLMPROXY_REDIS_PREFIX + bucket, 1_250_000, ex=60)
    else:
        settings.REDIS_URL = None
        LimitCounter.objects.create(bucket=bucket, value=1_250_000, expires_at=timezone.now() + timedelta(hours=1))
    # $1.25 counted against the budget, none of it in the usage log yet (its rows are still being written)
    html = admin_client.get(f"/admin/keys/apikey/{ApiKey.objects.get(name='shown').pk}/change/").content.decode()
    assert "Remaining budget: $8.7500 of $10" in html


# Item 13: counters do not leak


def test_settling_after_the_minute_expired_leaves_no_bucket_without_ttl(transactional_db):
    from keys.lookup import KeyRecord
    from usage.counters import RedisCounters
    from usage.limits import LimitKeeper

    prefix = f"llmproxy-test-{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(redis_url())
    key = KeyRecord(id=987654, name="late", key_hash="-", expires_at=None, revoked=False, allowed_models=None,
                    tpm_limit=1000)  # fmt: skip

    async def scenario() -> str:
        counters = RedisCounters(redis_url(), prefix=prefix)
        keeper = LimitKeeper(counters)
        hold = await keeper.admit(key, token_reservation=500)
        bucket = prefix + hold.admission.subjects[0].tokens
        client.pexpire(bucket, 1)  # the minute's TTL runs out while the answer is still streaming
        deadline = time.monotonic() + 5
        while client.exists(bucket) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await keeper.settle(hold, tokens_used=20, cost=None)
        await counters.close()
        return bucket

    bucket = asyncio.run(scenario())
    assert not client.exists(bucket)  # not recreated as -480 without a TTL


def test_a_client_gone_during_admission_gives_its_reservation_back(gateway_url, policy):
    from api.gateway import gateway
    from keys.services import create_api_key
    from tests.support.holding_proxy import HoldingProxy
    from usage.counters import RedisCounters
    from usage.limits import LimitKeeper

    target = urlparse(redis_url())
    prefix = f"llmproxy-test-{uuid.uuid4().hex}:"
    previous = gateway.limits
    wait_for_minute_window()
    with HoldingProxy(target.hostname, target.port or 6379) as proxy:
        proxied = f"redis://127.0.0.1:{proxy.port}{target.path}"
        gateway.limits = LimitKeeper(RedisCounters(proxied, prefix=prefix), recorder=gateway.usage)
        try:
            key = create_api_key(name="leaver", rpm_limit=100, tpm_limit=100_000).plaintext
            assert post(gateway_url, key).status_code == 200  # the connection is open, the scripts are loaded
            gateway.drain_threadsafe()
            minute_buckets = [f"rpm:{key_record('leaver').id}:", f"tpm:{key_record('leaver').id}:"]
            before = [used(prefix, bucket) for bucket in minute_buckets]
            proxy.hold()  # Redis runs the admission, its answer waits in the proxy
            with pytest.raises(httpx.ReadTimeout):
                post(gateway_url, key, timeout=0.5)
            assert wait_for_rows(2)[-1].end_reason == "client_disconnected"  # the gateway saw the client go
            proxy.release()
            deadline = time.monotonic() + 5
            while [used(prefix, bucket) for bucket in minute_buckets] != before and time.monotonic() < deadline:
                time.sleep(0.02)
            assert [used(prefix, bucket) for bucket in minute_buckets] == before
        finally:
            gateway.limits = previous


def used(prefix: str, bucket_start: str) -> int:
    """The sum of a key's minute buckets (requests or tokens), read from Redis directly."""
    client = redis.Redis.from_url(redis_url())
    return sum(int(client.get(name) or 0) for name in client.scan_iter(match=f"{prefix}{bucket_start}*"))
