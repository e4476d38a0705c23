"""Per-key limits: requests and tokens per minute, budgets; on database counters and on Redis."""

import asyncio
from decimal import Decimal

import httpx
import pytest

from tests.usage.conftest import wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]
RATE_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")  # fmt: skip


def limited_key(**limits) -> str:
    from keys.services import create_api_key

    return create_api_key(name="limited", **limits).plaintext


def post(gateway_url: str, key: str, **body) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO, **body},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_five_rpm_lets_five_through_and_rejects_the_sixth(gateway_url, policy, limit_backend):
    wait_for_minute_window()
    key = limited_key(rpm_limit=5, tpm_limit=100_000)
    responses = [post(gateway_url, key) for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in responses[:5]] == ["4", "3", "2", "1", "0"]
    for response in responses:
        assert all(name in response.headers for name in RATE_HEADERS)
        assert response.headers["x-ratelimit-limit-requests"] == "5"
    rejected = responses[-1]
    error = rejected.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_exceeded", "rate_limit_exceeded")
    assert 1 <= int(rejected.headers["retry-after"]) <= 60


def test_concurrent_requests_cannot_exceed_the_limit(gateway_url, policy, limit_backend):
    wait_for_minute_window()
    key = limited_key(rpm_limit=7)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as http:
            responses = await asyncio.gather(*(
                http.post(f"{gateway_url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO},
                          headers={"Authorization": f"Bearer {key}"})
                for _ in range(20)
            ))  # fmt: skip
        return [r.status_code for r in responses]

    statuses = asyncio.run(burst())
    assert statuses.count(200) == 7 and statuses.count(429) == 13


def test_tokens_per_minute_count_the_tokens_actually_used(gateway_url, policy, limit_backend):
    wait_for_minute_window()
    key = limited_key(tpm_limit=100)
    long_reply = [{"role": "user", "content": "REPEAT 40"}]  # 2 prompt + 40 completion tokens
    first = post(gateway_url, key, messages=long_reply, max_tokens=40)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-tokens"] == "100"
    second = post(gateway_url, key, messages=long_reply, max_tokens=40)
    assert second.status_code == 200
    third = post(gateway_url, key, messages=long_reply, max_tokens=40)  # 84 used + 40 reserved > 100
    assert third.status_code == 429
    assert "tokens per minute" in third.json()["error"]["message"]
    small = post(gateway_url, key, messages=HELLO, max_tokens=5)  # 84 + 5 fits
    assert small.status_code == 200


def test_budget_stops_a_key_once_spent(gateway_url, fake_provider, limit_backend):
    from api.gateway import gateway
    from routing.services import create_model

    create_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base)
    key = limited_key(max_budget_usd="0.00001", budget_period="day")
    assert post(gateway_url, key, model="gpt-4o").status_code == 200  # costs ~$0.000055: the budget is spent
    gateway.drain_threadsafe()  # the spend is settled right after the answer, off the request path
    refused = post(gateway_url, key, model="gpt-4o")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert int(refused.headers["retry-after"]) > 0


def test_keys_without_limits_get_no_limit_headers(gateway_url, policy, api_key):
    response = post(gateway_url, api_key)
    assert response.status_code == 200
    assert not any(name in response.headers for name in RATE_HEADERS)


def test_limits_are_set_from_the_command_line_and_editable(manage_py, gateway_url, policy):
    wait_for_minute_window()
    key = manage_py("create_api_key", "--name", "cli-limited", "--rpm", "2", "--tpm", "5000",
                    "--max-budget", "10", "--budget-period", "month").stdout.strip()  # fmt: skip
    from keys.models import ApiKey

    stored = ApiKey.objects.get(name="cli-limited")
    assert (stored.rpm_limit, stored.tpm_limit, stored.max_budget_usd, stored.budget_period) == (
        2, 5000, Decimal(10), "month",
    )  # fmt: skip
    assert [post(gateway_url, key).status_code for _ in range(3)] == [200, 200, 429]
    assert "rpm=5" in manage_py("set_api_key_limits", "cli-limited", "--rpm", "5").stdout
    assert post(gateway_url, key).status_code == 200
    manage_py("set_api_key_limits", "cli-limited", "--rpm", "none")
    assert ApiKey.objects.get(name="cli-limited").rpm_limit is None
    bad = manage_py("create_api_key", "--name", "bad", "--rpm", "0", check=False)
    assert bad.returncode != 0
