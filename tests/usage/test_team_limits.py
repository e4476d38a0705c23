"""Team limits: every key of a team shares the team's requests, tokens and budget, admitted together with the key's
own limits in one atomic step; on database counters and on Redis."""

import asyncio
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import openai
import pytest

from tests.usage.conftest import burst, counter_value, redis_url, two_gateways, wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]


def team_keys(*names: str, team: dict | None = None, **key_limits) -> list[str]:
    """A team 'research' (with `team` limits) and one key per name in it (each with `key_limits`)."""
    from keys.services import create_api_key
    from teams.services import create_team

    research = create_team(name="research", **(team or {}))
    return [create_api_key(name=name, team=research, **key_limits).plaintext for name in names]


def post(gateway_url: str, key: str, **body) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO, **body},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def minute_bucket(kind: str, owner: str) -> str:
    return f"{kind}:{owner}:{int(time.time() // 60)}"


def test_the_team_rpm_is_shared_by_its_keys(gateway_url, policy, limit_backend):
    wait_for_minute_window()
    first, second = team_keys("first", "second", team={"rpm_limit": 3})
    responses = [post(gateway_url, key) for key in (first, second, first, second, first)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in responses[:3]] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in responses)
    error = responses[3].json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_exceeded", "rate_limit_exceeded")
    assert error["message"].startswith("Rate limit reached for this API key's team 'research': 3 requests per minute.")
    assert 1 <= int(responses[3].headers["retry-after"]) <= 60


def test_the_tightest_limit_is_in_the_headers_and_names_who_refused(gateway_url, policy, limit_backend):
    wait_for_minute_window()
    [limited] = team_keys("limited", team={"rpm_limit": 4}, rpm_limit=4, tpm_limit=100_000)
    from keys.services import create_api_key
    from teams.models import Team

    unlimited = create_api_key(name="unlimited", team=Team.objects.get(name="research")).plaintext
    first = post(gateway_url, limited)  # key 3 left, team 3 left
    assert (first.headers["x-ratelimit-limit-requests"], first.headers["x-ratelimit-remaining-requests"]) == ("4", "3")
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"  # the team has no token limit: the key's applies
    assert post(gateway_url, unlimited).headers["x-ratelimit-remaining-requests"] == "2"  # the team's limit only
    assert post(gateway_url, unlimited).status_code == 200
    last = post(gateway_url, limited)  # key: 2 left; team: 0 left (the tighter)
    assert (last.status_code, last.headers["x-ratelimit-remaining-requests"]) == (200, "0")
    refused = post(gateway_url, limited)
    assert refused.status_code == 429 and "team 'research'" in refused.json()["error"]["message"]


def test_a_key_limit_tighter_than_its_team_refuses_as_the_key(gateway_url, policy, limit_backend):
    wait_for_minute_window()
    [key] = team_keys("tight", team={"rpm_limit": 10}, rpm_limit=2)
    responses = [post(gateway_url, key) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    message = responses[-1].json()["error"]["message"]
    assert message.startswith("Rate limit reached for this API key: 2 requests per minute.") and "team" not in message


def test_a_refusal_by_the_team_counts_nothing_against_the_key(gateway_url, policy, limit_backend):
    """One atomic step: what one subject refuses, no subject counts."""
    from api.gateway import gateway
    from keys.models import ApiKey
    from keys.services import create_api_key
    from teams.models import Team

    wait_for_minute_window()
    [key] = team_keys("counted", team={"rpm_limit": 3, "tpm_limit": 100_000}, rpm_limit=3, tpm_limit=100_000)
    other = create_api_key(name="other", team=Team.objects.get(name="research")).plaintext
    assert [post(gateway_url, other, max_tokens=10).status_code for _ in range(2)] == [200, 200]
    assert [post(gateway_url, key, max_tokens=10).status_code for _ in range(3)] == [200, 429, 429]
    gateway.drain_threadsafe()  # the token reservations are settled after the answers
    key_id, team_id = ApiKey.objects.get(name="counted").pk, Team.objects.get(name="research").pk
    assert counter_value(minute_bucket("rpm", str(key_id))) == 1  # the key's own limit was not reached
    assert counter_value(minute_bucket("rpm", f"team:{team_id}")) == 3
    assert counter_value(minute_bucket("tpm", str(key_id))) * 3 == counter_value(
        minute_bucket("tpm", f"team:{team_id}")
    )


def test_a_team_without_limits_and_a_key_without_limits_touch_no_counter(gateway_url, policy, limit_backend):
    from api.gateway import gateway
    from usage.counters import RedisCounters
    from usage.models import LimitCounter

    [key] = team_keys("free", team={"models": ["gpt-4o-mini"]})
    response = post(gateway_url, key)
    assert response.status_code == 200
    assert not any(name.startswith("x-ratelimit") for name in response.headers)
    gateway.drain_threadsafe()
    counters = gateway.limits.counters
    if isinstance(counters, RedisCounters):
        import redis

        assert list(redis.Redis.from_url(redis_url()).scan_iter(match=counters.prefix + "*")) == []
    else:
        assert not LimitCounter.objects.exists()


def test_a_team_budget_spent_across_two_keys_stops_both(gateway_url, fake_provider, limit_backend):
    from api.gateway import gateway
    from routing.services import create_model

    create_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base)
    # each call costs ~$0.000055: two calls, one per key, spend the team's $0.0001
    keys = team_keys("app-a", "app-b", team={"max_budget_usd": Decimal("0.0001"), "budget_period": "day"})
    clients = [openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20) for key in keys]
    for client in clients:
        assert client.chat.completions.create(model="gpt-4o", messages=HELLO).choices
        gateway.drain_threadsafe()  # the spend is settled right after the answer, off the request path
    for client in clients:
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt-4o", messages=HELLO)
        error = refused.value.response.json()["error"]
        assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
        assert error["message"] == "This API key's team 'research' has spent its budget of $0.000100 this day."
        assert int(refused.value.response.headers["retry-after"]) > 0


@pytest.mark.parametrize("kind", ["database", "redis"])
def test_a_rebuilt_team_budget_counts_every_key_of_the_team(transactional_db, kind):
    """A lost team bucket is rebuilt from the rollup rows of the team (any of its keys) in the period, plus the rows
    not written yet."""
    from django.utils import timezone

    from keys.lookup import fetch_key_record
    from keys.models import ApiKey
    from usage.counters import DatabaseCounters, RedisCounters
    from usage.limits import LimitExceeded, LimitKeeper, budget_bucket
    from usage.models import DailyUsage
    from usage.recorder import UsageRecorder

    team_keys("one", "two", team={"max_budget_usd": Decimal("3"), "budget_period": "month"})
    one, two = ApiKey.objects.get(name="one"), ApiKey.objects.get(name="two")
    key = fetch_key_record(one.key_hash)
    now = timezone.now()
    this_month, last_month = now.date().replace(day=1), now.date().replace(day=1) - timedelta(days=1)
    for api_key, day, cost, team_id in (
        (one, this_month, "1", one.team_id),
        (two, this_month, "1.5", one.team_id),
        (two, last_month, "100", one.team_id),  # another period
        (two, this_month, "100", None),  # spent before the key joined the team
    ):
        DailyUsage.objects.create(day=day, key_name=api_key.name, model="m", api_key=api_key, team_id=team_id,
                                  cost_usd=Decimal(cost))  # fmt: skip
    counters = RedisCounters(redis_url(), prefix=f"llmproxy-test-{uuid.uuid4().hex}:") if kind == "redis" else (
        DatabaseCounters()
    )  # fmt: skip

    async def scenario() -> tuple[str, int]:
        recorder = UsageRecorder(interval=3600, batch_size=1_000_000)
        recorder.record({"api_key_id": two.pk, "team_id": one.team_id, "created_at": now, "cost_usd": Decimal("0.5")})
        keeper = LimitKeeper(counters, recorder=recorder)
        with pytest.raises(LimitExceeded) as refused:  # $1 + $1.5 + $0.5 spent this month, of $3
            await keeper.admit(key, token_reservation=10)
        bucket, _ = budget_bucket(key.team, now)
        spent = await counters.read(bucket)
        await counters.close()
        return refused.value.message, spent

    message, spent = asyncio.run(scenario())
    assert spent == 3_000_000
    assert message == "This API key's team 'research' has spent its budget of $3.000000 this month."


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_two_processes_let_exactly_the_team_rpm_through(subprocess_database_url, policy, backend):
    keys = team_keys("left", "right", team={"rpm_limit": 9})
    with two_gateways(subprocess_database_url, backend) as servers:
        responses = burst(servers, keys, 30)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 9, statuses
    assert statuses.count(429) == 21
    assert all("team 'research'" in r.json()["error"]["message"] for r in responses if r.status_code == 429)
