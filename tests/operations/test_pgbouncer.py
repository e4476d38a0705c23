"""The gateway through PgBouncer in transaction pooling mode (Debian's package), with database counters (no Redis:
every admission is a transaction with row locks): keys, limits, the request log, an admin edit picked up by the
policy reload, readiness; and fewer PostgreSQL connections than the gateway's own pools hold (README: PostgreSQL
connections).
"""

import asyncio
import re
import time
from collections import Counter

import httpx
import pytest
from django.db import connection

from tests.operations.cluster import require_binary
from tests.operations.load import Load, Outcome, send
from tests.support.admin_users import PASSWORD
from tests.support.fake_control import FakeProviderProcess
from tests.support.pgbouncer import PgBouncer
from tests.support.server_process import GatewayProcess
from tests.usage.conftest import wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)

POOL_SIZE = 3  # PgBouncer's server connections for the test database
WORKERS, GATEWAY_POOL = 2, 10  # the gateway side: up to 20 client connections to PgBouncer
KEY_RPM, TEAM_RPM = 20, 15


@pytest.fixture
def bouncer(postgres_only):
    require_binary("pgbouncer")
    settings_dict = connection.settings_dict
    with PgBouncer(settings_dict.get("HOST") or "127.0.0.1", int(settings_dict.get("PORT") or 5432),
                   pool_size=POOL_SIZE) as running:  # fmt: skip
        yield running


@pytest.fixture
def provider():
    with FakeProviderProcess() as running:
        yield running


def admin_add_alias(url: str, alias: str, target_id: int) -> httpx.Response:
    """An admin logs in and adds an alias in the admin, over HTTP (session, CSRF, audit entry: all through
    PgBouncer). Cookies are carried by hand: with DEBUG off they are Secure, which a client keeps off plain http."""
    with httpx.Client(base_url=url, timeout=10) as http:
        cookies: dict[str, str] = {}

        def request(method: str, path: str, **kwargs) -> httpx.Response:
            header = "; ".join(f"{name}={value}" for name, value in cookies.items())
            response = http.request(method, path, headers={"Cookie": header}, **kwargs)
            cookies.update(response.cookies)
            return response

        def csrf_token(page: httpx.Response) -> str:
            return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

        login = request("GET", "/admin/login/")
        data = {"username": "ops-admin", "password": PASSWORD, "csrfmiddlewaretoken": csrf_token(login)}
        assert request("POST", "/admin/login/", data=data).status_code == 302
        form = request("GET", "/admin/routing/modelalias/add/")
        data = {"alias": alias, "target": str(target_id), "csrfmiddlewaretoken": csrf_token(form)}
        return request("POST", "/admin/routing/modelalias/add/", data=data)


def test_the_gateway_works_through_pgbouncer_in_transaction_pooling(bouncer, provider):
    from django.contrib.auth import get_user_model

    from keys.services import create_api_key
    from routing.services import create_model
    from teams.services import create_team
    from usage.models import RequestLog

    gpt = create_model("gpt-4o-mini", litellm_model="openai/fake-model", api_base=provider.openai_base)
    get_user_model().objects.create_superuser("ops-admin", "ops@example.com", PASSWORD)
    limited = create_api_key(name="limited", rpm_limit=KEY_RPM).plaintext
    team_key = create_api_key(name="member", team=create_team(name="research", rpm_limit=TEAM_RPM)).plaintext
    plain = create_api_key(name="plain").plaintext
    through_bouncer = f"postgres://postgres@127.0.0.1:{bouncer.port}/{connection.settings_dict['NAME']}"
    gateway = GatewayProcess(
        through_bouncer, workers=WORKERS, REDIS_URL="", LLMPROXY_PGBOUNCER="1", LLMPROXY_DB_POOL_SIZE=str(GATEWAY_POOL),
        LLMPROXY_POLICY_REFRESH_SECONDS="0.25", LLMPROXY_USAGE_FLUSH_SECONDS="0.2",
    ).start()  # fmt: skip
    try:
        ready = httpx.get(f"{gateway.url}/healthz/ready", timeout=10)
        if ready.status_code == 404:  # before /healthz/ready existed
            ready = httpx.get(f"{gateway.url}/healthz", timeout=10)
        assert ready.status_code == 200, ready.text

        wait_for_minute_window()
        jobs = [(key, f"bouncer-{i}") for i, key in enumerate([limited, team_key, plain] * 40)]
        outcomes = asyncio.run(Load(gateway.url, jobs, concurrency=16).run())
        statuses = {key: Counter(o.status for o in outcomes if o.key == key) for key in (limited, team_key, plain)}
        assert statuses[limited] == {200: KEY_RPM, 429: 40 - KEY_RPM}
        assert statuses[team_key] == {200: TEAM_RPM, 429: 40 - TEAM_RPM}
        assert statuses[plain] == {200: 40}
        pools = [pool for pool in bouncer.show("POOLS") if pool["database"] == connection.settings_dict["NAME"]]
        servers = sum(int(pool[name]) for pool in pools for name in ("sv_active", "sv_idle", "sv_used", "sv_login"))
        clients = sum(int(pool["cl_active"]) + int(pool["cl_waiting"]) for pool in pools)
        print(f"\nthrough PgBouncer: {clients} gateway connections on {servers} PostgreSQL connections")
        assert servers <= POOL_SIZE < clients  # the gateway's pools multiplexed onto PgBouncer's few connections

        # An admin edit through the gateway's own admin: the new alias is served within a second.
        assert admin_add_alias(gateway.url, "via-bouncer", gpt.id).status_code == 302
        edited_at = time.monotonic()
        alias_calls = asyncio.run(call_until_served(gateway.url, plain, "via-bouncer", edited_at + 1.5))
        served_after = alias_calls[-1].started - edited_at
        print(f"the alias was served {served_after:.2f} s after the admin saved it")
        assert alias_calls[-1].status == 200 and served_after < 1.0
    finally:
        exit_code = gateway.stop()
    assert exit_code in (0, -15)  # a graceful stop: every buffered row written through PgBouncer
    sent = outcomes + alias_calls
    assert Counter(RequestLog.objects.values_list("status", flat=True)) == Counter(o.status for o in sent)
    assert " ERROR " not in gateway.log(), gateway.log()


async def call_until_served(url: str, key: str, model: str, until: float) -> list[Outcome]:
    """Ask for `model` until it is served (or `until` passes): the calls made."""
    calls = []
    async with httpx.AsyncClient(timeout=10) as http:
        while not calls or (calls[-1].status != 200 and time.monotonic() < until):
            calls.append(await send(http, url, key, f"alias-{len(calls)}", model=model))
            await asyncio.sleep(0.05)
    return calls
