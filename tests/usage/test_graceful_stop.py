"""A load run followed by a graceful stop leaves exactly one request-log row per request."""

import asyncio

import httpx
import pytest

from tests.support.server_process import GatewayProcess

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 2000
CONCURRENCY = 32


def test_thousands_of_requests_then_sigterm_lose_no_row(subprocess_database_url, policy, api_key):
    from usage.models import DailyUsage, RequestLog

    # A long flush interval and a huge batch: the rows can only reach the database through the shutdown flush.
    server = GatewayProcess(
        subprocess_database_url, LLMPROXY_USAGE_FLUSH_SECONDS="3600", LLMPROXY_USAGE_BATCH_SIZE="1000000"
    ).start()
    try:

        async def load() -> list[int]:
            limits = httpx.Limits(max_connections=CONCURRENCY)
            async with httpx.AsyncClient(timeout=60, limits=limits) as http:
                semaphore = asyncio.Semaphore(CONCURRENCY)

                async def one(index: int) -> int:
                    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"n{index}"}],
                            "stream": index % 2 == 0}  # fmt: skip
                    async with semaphore:
                        response = await http.post(f"{server.url}/v1/chat/completions", json=body,
                                                   headers={"Authorization": f"Bearer {api_key}"})  # fmt: skip
                        return response.status_code

                return await asyncio.gather(*(one(i) for i in range(REQUESTS)))

        statuses = asyncio.run(load())
        assert RequestLog.objects.count() == 0  # nothing flushed yet: everything is in the worker's buffer
    finally:
        exit_code = server.stop()
    assert exit_code in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert statuses.count(200) == REQUESTS
    assert RequestLog.objects.count() == REQUESTS
    assert RequestLog.objects.filter(streamed=True).count() == REQUESTS // 2
    assert sum(DailyUsage.objects.values_list("requests", flat=True)) == REQUESTS
