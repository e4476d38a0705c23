"""Which deployment serves a request when all are healthy (issue 10): the best priority first, by weight within a
priority, a disabled deployment never; observed at three fake provider processes."""

import asyncio
import math
import time

import openai
import pytest

from tests.e2e.conftest import ATTEMPTS, ask, deployment, make_model, received

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 300


def test_the_best_priority_serves_every_request_and_a_disabled_deployment_none(failover_client, fake_providers):
    best, second, disabled = fake_providers
    make_model("ranked", deployment(second, priority=1), deployment(best, priority=0),
               deployment(disabled, priority=0, weight=100, enabled=False))  # fmt: skip
    assert [ask(failover_client, "ranked") for _ in range(10)] == [("Hello! You said: hi", 1)] * 10
    assert received(best, second, disabled) == [10, 0, 0]


def test_weights_share_the_requests_within_a_priority(gateway_url, failover_key, fake_providers):
    heavy, light, unused = fake_providers  # unused: a disabled deployment and one of a worse priority
    make_model("weighted", deployment(heavy, weight=3), deployment(light, weight=1),
               deployment(unused, weight=50, enabled=False), deployment(unused, priority=1))  # fmt: skip

    async def send_all() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=failover_key, max_retries=0, timeout=30)
        limit = asyncio.Semaphore(12)

        async def one(index: int) -> str:
            async with limit:
                raw = await client.chat.completions.with_raw_response.create(
                    model="weighted", messages=[{"role": "user", "content": f"hi {index}"}]
                )
                return raw.headers[ATTEMPTS]

        try:
            return await asyncio.gather(*(one(index) for index in range(REQUESTS)))
        finally:
            await client.close()

    assert set(asyncio.run(send_all())) == {"1"}
    heavy_count, light_count, unused_count = received(heavy, light, unused)
    assert heavy_count + light_count == REQUESTS and unused_count == 0
    expected, sigma = REQUESTS * 0.75, math.sqrt(REQUESTS * 0.75 * 0.25)  # binomial: 225 ± 7.5
    assert abs(heavy_count - expected) <= 4 * sigma, (heavy_count, light_count)


def test_a_deployment_at_its_own_rpm_is_left_out_for_the_rest_of_the_minute(failover_client, fake_providers):
    quota, spare, _ = fake_providers
    make_model("quota", {**deployment(quota), "rpm": 3}, deployment(spare, priority=1))
    start_well_inside_a_minute()
    assert [ask(failover_client, "quota")[1] for _ in range(5)] == [1] * 5
    assert received(quota, spare) == [3, 2]


def test_every_deployment_at_its_rpm_is_a_429_naming_the_wait(failover_client, fake_providers):
    quota, _, _ = fake_providers
    make_model("tight", {**deployment(quota), "rpm": 1})
    start_well_inside_a_minute()
    ask(failover_client, "tight")
    with pytest.raises(openai.RateLimitError) as caught:
        failover_client.chat.completions.create(model="tight", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "deployment_rate_limited"
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60
    assert received(quota) == [1]


def start_well_inside_a_minute() -> None:
    """The counts are per clock minute: begin at least 5 s before the next one, so that the test's few requests
    all fall into the same minute (waiting for the clock, not for the server)."""
    while time.time() % 60 > 55:
        time.sleep(0.2)
