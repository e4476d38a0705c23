"""Two gateway processes sharing one database (and, separately, one Redis) enforce one limit together."""

import asyncio
import uuid

import httpx
import pytest

from tests.support.server_process import GatewayProcess
from tests.usage.conftest import redis_url, wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_two_processes_let_exactly_the_limit_through(subprocess_database_url, policy, backend):
    from keys.services import create_api_key

    key = create_api_key(name="shared", rpm_limit=9).plaintext
    env = {"REDIS_URL": redis_url()} if backend == "redis" else {"REDIS_URL": ""}
    if backend == "redis":
        env["LLMPROXY_REDIS_PREFIX"] = f"llmproxy-test-{uuid.uuid4().hex}:"
    servers = [GatewayProcess(subprocess_database_url, **env).start() for _ in range(2)]
    try:
        wait_for_minute_window()

        async def burst() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as http:
                responses = await asyncio.gather(*(
                    http.post(f"{servers[i % 2].url}/v1/chat/completions",
                              json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                              headers={"Authorization": f"Bearer {key}"})
                    for i in range(30)
                ))  # fmt: skip
            return [r.status_code for r in responses]

        statuses = asyncio.run(burst())
    finally:
        for server in servers:
            server.stop()
    assert statuses.count(200) == 9, statuses
    assert statuses.count(429) == 21
