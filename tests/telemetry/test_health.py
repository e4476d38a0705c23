"""Health checks as a load balancer or an orchestrator uses them: /healthz/live (the process answers, no I/O) and
/healthz/ready (database, Redis when configured, policy loaded: 503 naming what failed); /healthz unchanged."""

import time

import httpx
import pytest
from django.db import connection

from tests.conftest import database_url_for_subprocess
from tests.support.live_server import free_port
from tests.support.server_process import GatewayProcess
from tests.support.tcp_proxy import TcpProxy
from tests.usage.conftest import redis_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_live_answers_ok_without_touching_anything(gateway_url):
    response = httpx.get(f"{gateway_url}/healthz/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    refused = httpx.post(f"{gateway_url}/healthz/live")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET")


def test_ready_checks_the_database_and_the_policy(gateway_url, policy):
    response = httpx.get(f"{gateway_url}/healthz/ready")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["failed"]) == ("ok", [])
    assert body["checks"] == {"database": "ok", "policy": "ok"}  # no REDIS_URL: Redis is not a check
    assert httpx.get(f"{gateway_url}/healthz").json()["status"] == "ok"  # the old check keeps its shape


def test_ready_names_redis_when_redis_is_configured_but_unreachable(policy):
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    server = GatewayProcess(database_url_for_subprocess(), REDIS_URL=closed, LLMPROXY_READY_TIMEOUT_SECONDS="1").start()
    try:
        ready = httpx.get(f"{server.url}/healthz/ready", timeout=10)
        live = httpx.get(f"{server.url}/healthz/live", timeout=10)
    finally:
        server.stop()
    assert ready.status_code == 503
    body = ready.json()
    assert (body["status"], body["failed"]) == ("unavailable", ["redis"])
    assert body["checks"] == {"database": "ok", "policy": "ok", "redis": "failed"}
    assert body["check_ms"] < 1500  # each check is bounded by LLMPROXY_READY_TIMEOUT_SECONDS
    assert (live.status_code, live.json()) == (200, {"status": "ok"})


def test_ready_with_a_reachable_redis(policy):
    server = GatewayProcess(database_url_for_subprocess(), REDIS_URL=redis_url(),
                            LLMPROXY_REDIS_PREFIX="llmproxy-test-health:").start()  # fmt: skip
    try:
        ready = httpx.get(f"{server.url}/healthz/ready", timeout=10)
    finally:
        server.stop()
    assert (ready.status_code, ready.json()["checks"]) == (200, {"database": "ok", "policy": "ok", "redis": "ok"})


def ready_status(server: GatewayProcess, expected: int, timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (response := httpx.get(f"{server.url}/healthz/ready", timeout=10)).status_code != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return response


def test_ready_fails_while_the_database_is_away_and_recovers_live_stays_up(policy):
    if connection.vendor != "postgresql":
        pytest.skip("a database outage is simulated on PostgreSQL (CI runs it); SQLite is a local file")
    settings_dict = connection.settings_dict
    with TcpProxy(settings_dict.get("HOST") or "127.0.0.1", int(settings_dict.get("PORT") or 5432)) as proxy:
        user = settings_dict.get("USER") or "postgres"
        url = f"postgres://{user}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"
        server = GatewayProcess(url, LLMPROXY_DB_POOL_TIMEOUT_SECONDS="1", LLMPROXY_READY_TIMEOUT_SECONDS="1").start()
        try:
            assert ready_status(server, 200).status_code == 200
            proxy.cut()
            during = ready_status(server, 503)
            live = httpx.get(f"{server.url}/healthz/live", timeout=10)
            proxy.restore()
            after = ready_status(server, 200)
        finally:
            proxy.restore()
            server.stop()
    assert during.status_code == 503
    assert (during.json()["failed"], during.json()["checks"]["policy"]) == (["database"], "ok")  # cached policy
    assert live.status_code == 200
    assert after.status_code == 200
