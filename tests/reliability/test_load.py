"""One worker under load: 200 concurrent streams, and a SIGTERM in the middle of streaming traffic."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import database_url_for_subprocess
from tests.support.server_process import GatewayProcess

pytestmark = pytest.mark.django_db(transaction=True)

CONCURRENT_STREAMS = 200
RSS_BOUND_MIB = 400  # a worker with LiteLLM loaded is ~250 MiB; the streams themselves must add little


def rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def expected_text(index: int) -> str:
    return f"Hello! You said: stream {index}"


async def one_stream(http: httpx.AsyncClient, url: str, key: str, index: int) -> tuple[int, list[str]]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"stream {index}"}], "stream": True}
    async with http.stream("POST", url, json=body, headers={"Authorization": f"Bearer {key}"}) as response:
        events = [line.removeprefix("data: ") async for line in response.aiter_lines() if line.startswith("data: ")]
        return response.status_code, events


def streamed_text(events: list[str]) -> str:
    import orjson

    text = []
    for event in events:
        if event != "[DONE]" and '"error"' not in event:
            text.extend(choice["delta"].get("content") or "" for choice in orjson.loads(event)["choices"])
    return "".join(text)


def test_two_hundred_concurrent_streams_on_one_worker(policy, api_key, fake_provider):
    from usage.models import RequestLog

    fake_provider.chunk_delay = 0.05  # every stream stays open ~0.5 s: they overlap
    server = GatewayProcess(database_url_for_subprocess(), LLMPROXY_USAGE_FLUSH_SECONDS="0.2").start()
    url = f"{server.url}/v1/chat/completions"

    async def load() -> list[tuple[int, list[str]]]:
        limits = httpx.Limits(max_connections=CONCURRENT_STREAMS, max_keepalive_connections=CONCURRENT_STREAMS)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            return await asyncio.gather(*(one_stream(http, url, api_key, i) for i in range(CONCURRENT_STREAMS)))

    try:
        started = time.monotonic()
        results = asyncio.run(load())
        elapsed = time.monotonic() - started
        peak = rss_mib(server.process.pid, "VmHWM")
        results_again = asyncio.run(load())
        peak_again = rss_mib(server.process.pid, "VmHWM")
    finally:
        server.stop()
    print(f"\n{CONCURRENT_STREAMS} concurrent streams in {elapsed:.2f} s; worker peak RSS {peak:.0f} MiB, "
          f"after a second round {peak_again:.0f} MiB")  # fmt: skip
    for run in (results, results_again):
        assert [status for status, _ in run] == [200] * CONCURRENT_STREAMS
        assert all(events[-1] == "[DONE]" for _, events in run)
        assert [streamed_text(events) for _, events in run] == [expected_text(i) for i in range(CONCURRENT_STREAMS)]
    assert peak < RSS_BOUND_MIB
    assert peak_again - peak < 20  # a second round of 200 streams does not grow the worker
    assert RequestLog.objects.count() == 2 * CONCURRENT_STREAMS


def test_sigterm_during_streaming_load_finishes_or_ends_each_stream_and_loses_no_row(policy, api_key, fake_provider):
    from usage.models import RequestLog

    streams = 100
    fake_provider.chunk_delay = 0.05
    server = GatewayProcess(
        database_url_for_subprocess(), LLMPROXY_USAGE_FLUSH_SECONDS="3600", LLMPROXY_USAGE_BATCH_SIZE="1000000"
    ).start()
    url = f"{server.url}/v1/chat/completions"

    async def load_then_sigterm() -> list:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=streams)) as http:
            tasks = [asyncio.create_task(one_stream(http, url, api_key, i)) for i in range(streams)]
            while len(fake_provider.requests) < streams:  # every stream is in flight at the provider
                await asyncio.sleep(0.01)
            await asyncio.to_thread(server.stop)  # SIGTERM, and wait for the process to exit
            return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(load_then_sigterm())
    assert server.process.returncode in (0, -15)
    assert not [result for result in results if isinstance(result, BaseException)]
    for status, events in results:
        assert status == 200
        assert events[-1] == "[DONE]" or ('"error"' in events[-1] and "[DONE]" not in events)
    finished = sum(events[-1] == "[DONE]" for _, events in results)
    print(f"\nSIGTERM with {streams} streams in flight: {finished} finished, {streams - finished} ended with an error")
    assert RequestLog.objects.count() == streams  # the shutdown flush wrote every row: 0 lost
