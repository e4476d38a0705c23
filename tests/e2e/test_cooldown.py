"""Cooldowns (issue 10): a deployment that failed LLMPROXY_COOLDOWN_FAILURES times within the window, or answered 429
with Retry-After, gets no request until its cooldown ends, as the fake providers observe; a model's only deployment
too (the caller gets an immediate 503 with Retry-After instead of a retry storm); with every deployment cooling down,
the one whose cooldown ends first is tried. Shared by two gateway processes through Redis."""

import time
import uuid
from collections.abc import Callable, Iterator

import openai
import pytest

from tests.conftest import database_url_for_subprocess
from tests.e2e.conftest import ATTEMPTS, ask, deployment, make_model, received
from tests.support.server_process import GatewayProcess
from tests.usage.conftest import redis_url

pytestmark = pytest.mark.django_db(transaction=True)

COOLDOWN = 1.5  # seconds: LLMPROXY_COOLDOWN_SECONDS of the gateway under test


@pytest.fixture
def quick_cooldowns(gateway_url, settings) -> Iterator[None]:
    """The in-process gateway's deployment health as these settings make it (read when the gateway is built)."""
    from api.gateway import gateway
    from routing.health import health_from_settings

    settings.LLMPROXY_COOLDOWN_SECONDS = COOLDOWN
    settings.LLMPROXY_COOLDOWN_FAILURES = 3
    settings.LLMPROXY_COOLDOWN_WINDOW_SECONDS = 60.0
    settings.REDIS_URL = None
    previous, gateway.health = gateway.health, health_from_settings()
    yield
    gateway.health = previous


def poll(condition: Callable[[], bool], seconds: float = 10.0, every: float = 0.1) -> float:
    """Seconds until `condition()` held (each call may send a request); fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "the condition did not hold in time"
        time.sleep(every)
    return time.monotonic() - started


def reached(client: openai.OpenAI, model: str, provider, count: int) -> bool:
    """Ask once (answered by some deployment); True once `provider` has received `count` requests."""
    ask(client, model)
    return len(provider.requests) >= count


def test_three_failures_cool_a_deployment_down_until_the_cooldown_ends(
    failover_client, fake_providers, quick_cooldowns
):
    down, up, _ = fake_providers
    make_model("pool", deployment(down), deployment(up, priority=1))
    down.fail_always("status", status=500)
    assert [ask(failover_client, "pool")[1] for _ in range(3)] == [2, 2, 2]
    cooled_at = time.monotonic()
    assert [ask(failover_client, "pool") for _ in range(3)] == [("Hello! You said: hi", 1)] * 3  # skipped
    assert received(down, up) == [3, 6]
    down.heal()
    poll(lambda: reached(failover_client, "pool", down, 4))
    assert time.monotonic() - cooled_at >= COOLDOWN - 0.3  # not before the cooldown ended
    assert ask(failover_client, "pool")[1] == 1 and len(down.requests) == 5  # healthy again: first choice


def test_a_rate_limit_with_retry_after_cools_the_deployment_down_at_once(
    failover_client, fake_providers, quick_cooldowns
):
    down, up, _ = fake_providers
    make_model("pool", deployment(down), deployment(up, priority=1))
    down.fail_next("status", status=429, headers={"retry-after": "2"})
    assert ask(failover_client, "pool")[1] == 2
    limited_at = time.monotonic()
    assert ask(failover_client, "pool")[1] == 1
    assert received(down, up) == [1, 2]  # one 429 was enough
    poll(lambda: reached(failover_client, "pool", down, 2))
    assert time.monotonic() - limited_at >= 2 - 0.3  # the provider's Retry-After, not LLMPROXY_COOLDOWN_SECONDS


def test_a_single_deployment_model_cooling_down_answers_503_without_calling_the_provider(
    failover_client, fake_providers, quick_cooldowns
):
    only, _, _ = fake_providers
    make_model("solo", deployment(only))
    only.fail_always("status", status=500)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError) as failed:
            ask(failover_client, "solo")
        assert (failed.value.status_code, failed.value.response.headers[ATTEMPTS]) == (502, "1")
    for _ in range(5):  # no retry storm: the provider hears nothing while the deployment cools down
        with pytest.raises(openai.InternalServerError) as cooling:
            ask(failover_client, "solo")
        response = cooling.value.response
        assert response.status_code == 503 and response.json()["error"]["code"] == "deployment_cooling_down"
        assert response.json()["error"]["type"] == "api_error"
        assert 1 <= int(response.headers["retry-after"]) <= 2 and response.headers[ATTEMPTS] == "0"
    assert len(only.requests) == 3
    only.heal()

    def served() -> bool:
        try:
            return ask(failover_client, "solo") == ("Hello! You said: hi", 1)
        except openai.InternalServerError as error:
            assert error.response.json()["error"]["code"] == "deployment_cooling_down"
            return False

    poll(served)
    assert len(only.requests) == 4


def test_with_every_deployment_cooling_down_the_one_recovering_first_is_tried(
    failover_client, fake_providers, quick_cooldowns
):
    late, early, _ = fake_providers
    make_model("pool", deployment(late, name="late"), deployment(early, name="early", priority=1))
    late.fail_next("status", status=429, headers={"retry-after": "60"})
    early.fail_next("status", status=429, headers={"retry-after": "30"})
    with pytest.raises(openai.RateLimitError) as limited:
        ask(failover_client, "pool")
    assert limited.value.response.headers[ATTEMPTS] == "2"
    assert ask(failover_client, "pool") == ("Hello! You said: hi", 1)  # "early": its cooldown ends first
    assert received(late, early) == [1, 2]


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "per-process"])
def test_a_cooldown_entered_through_one_process_is_seen_by_another_only_through_redis(
    failover_key, fake_providers, shared
):
    down, up, _ = fake_providers
    make_model("pool", deployment(down), deployment(up, priority=1))
    down.fail_always("status", status=503)
    env = {"LLMPROXY_COOLDOWN_SECONDS": "6", "LLMPROXY_HEALTH_REFRESH_SECONDS": "0.2", "REDIS_URL": ""}
    if shared:
        env |= {"REDIS_URL": redis_url(), "LLMPROXY_REDIS_PREFIX": f"llmproxy-test-{uuid.uuid4().hex}:"}
    servers = [GatewayProcess(database_url_for_subprocess(), **env).start() for _ in range(2)]
    try:
        first, second = (
            openai.OpenAI(base_url=f"{server.url}/v1", api_key=failover_key, max_retries=0, timeout=30)
            for server in servers
        )
        assert [ask(first, "pool")[1] for _ in range(3)] == [2, 2, 2]
        assert received(down, up) == [3, 3]
        if not shared:  # each process keeps its own cooldowns: the second one has seen no failure yet
            assert ask(second, "pool")[1] == 2 and len(down.requests) == 4
            return

        def second_skips_it() -> bool:
            before = len(down.requests)
            return ask(second, "pool")[1] == 1 and len(down.requests) == before

        poll(second_skips_it, seconds=5)
        assert len(down.requests) == 3  # the second process never called the cooling deployment
        down.heal()
        poll(
            lambda: reached(second, "pool", down, 4), seconds=20
        )  # after the cooldown, the second process calls it again
    finally:
        for server in servers:
            server.stop()
