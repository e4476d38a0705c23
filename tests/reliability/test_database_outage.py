"""The database goes away for a few seconds: cached keys and policy keep serving, no usage row is lost.

The outage is real at the network level: the gateway reaches PostgreSQL through a TCP proxy that the test cuts
(open connections reset, new ones refused) and restores, so the machine's shared server keeps running.
"""

import time

import httpx
import pytest
from django.db import connection

from tests.support.server_process import GatewayProcess
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def proxied_database(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("a database outage is simulated on PostgreSQL (CI runs it); SQLite is a local file")
    settings_dict = connection.settings_dict
    with TcpProxy(settings_dict.get("HOST") or "127.0.0.1", int(settings_dict.get("PORT") or 5432)) as proxy:
        user = settings_dict.get("USER") or "postgres"
        yield proxy, f"postgres://{user}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"


def start_gateway(database_url: str, **env: str) -> GatewayProcess:
    return GatewayProcess(
        database_url,
        LLMPROXY_USAGE_FLUSH_SECONDS="0.2",
        LLMPROXY_POLICY_REFRESH_SECONDS="0.25",
        LLMPROXY_DB_POOL_TIMEOUT_SECONDS="1",
        **env,
    ).start()


def chat(server: GatewayProcess, key: str, **body) -> httpx.Response:
    payload = {"model": "gpt-4o-mini", "messages": HELLO, **body}
    return httpx.post(
        f"{server.url}/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_outage_serves_cached_keys_reports_it_and_loses_no_usage_row(proxied_database, policy, api_key):
    from keys.services import create_api_key
    from usage.models import RequestLog

    proxy, database_url = proxied_database
    never_used_key = create_api_key(name="not-cached-yet").plaintext
    server = start_gateway(database_url)
    try:
        assert chat(server, api_key).status_code == 200  # the key and the policy are now cached
        assert wait_until(lambda: RequestLog.objects.count() == 1)

        proxy.cut()
        assert wait_until(lambda: httpx.get(f"{server.url}/healthz", timeout=10).status_code == 503)
        health = httpx.get(f"{server.url}/healthz", timeout=10).json()
        assert health["database"] == "unreachable"

        answers = [chat(server, api_key, stream=index % 2 == 1) for index in range(10)]
        assert [answer.status_code for answer in answers] == [200] * 10
        assert all(answer.text.endswith("data: [DONE]\n\n") for answer in answers[1::2])
        uncached = chat(server, never_used_key)
        assert uncached.status_code == 503  # the key cannot be checked: refused, not a 500, not a hang
        assert uncached.json()["error"]["code"] == "database_unavailable"
        time.sleep(1.5)  # several flush intervals inside the outage
        assert RequestLog.objects.count() == 1  # nothing could be written: the rows wait in the worker

        proxy.restore()
        assert wait_until(lambda: RequestLog.objects.count() == 12, timeout=15)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert chat(server, api_key).status_code == 200
        assert wait_until(lambda: RequestLog.objects.count() == 13)
    finally:
        server.stop()
    assert RequestLog.objects.count() == 13
    assert RequestLog.objects.filter(status=200).count() == 12
    assert "could not write" in server.log()
    assert "Traceback" not in server.log()


def test_past_the_buffer_bound_the_oldest_rows_are_dropped_and_logged(proxied_database, policy, api_key):
    from usage.models import RequestLog

    proxy, database_url = proxied_database
    server = start_gateway(database_url, LLMPROXY_USAGE_MAX_BUFFERED="5")
    try:
        assert chat(server, api_key).status_code == 200
        assert wait_until(lambda: RequestLog.objects.count() == 1)
        proxy.cut()
        for index in range(8):
            assert chat(server, api_key, user=f"outage-{index}").status_code == 200
        proxy.restore()
        assert wait_until(lambda: RequestLog.objects.count() == 6, timeout=15)
        time.sleep(0.5)
    finally:
        server.stop()
    assert RequestLog.objects.count() == 1 + 5  # the 5 newest outage rows survive, the 3 oldest are dropped
    assert "usage buffer full: dropped" in server.log()
