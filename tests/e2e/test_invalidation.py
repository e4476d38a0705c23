"""An admin edit reaches every worker of another process within a second (version stamp checked every 0.25 s)."""

import time

import httpx
import pytest

from tests.conftest import database_url_for_subprocess
from tests.support.server_process import GatewayProcess

pytestmark = pytest.mark.django_db(transaction=True)


def test_revocation_and_policy_edits_reach_other_workers_within_a_second(policy, api_key):
    from keys.services import revoke_api_key
    from routing.models import AllowedModel

    server = GatewayProcess(
        database_url_for_subprocess(), LLMPROXY_POLICY_REFRESH_SECONDS="0.25", WEB_CONCURRENCY="2"
    ).start()
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"model": "capped", "messages": [{"role": "user", "content": "REPEAT 3"}]}

    def answer() -> httpx.Response:
        return httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=10)

    def seconds_until(predicate) -> float:
        started = time.monotonic()
        while not predicate(answer()):
            assert time.monotonic() - started < 3, "the edit did not arrive"
            time.sleep(0.02)
        return time.monotonic() - started

    try:
        assert answer().status_code == 200
        model = AllowedModel.objects.get(name="capped")
        model.enabled = False
        model.save()
        assert seconds_until(lambda r: r.status_code == 400) < 1.0
        revoke_api_key(name="test-app")
        assert seconds_until(lambda r: r.status_code == 401) < 1.0
    finally:
        server.stop()
