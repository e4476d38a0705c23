"""Concurrent streams, and a client that goes away mid-stream."""

import asyncio
import time

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_concurrent_streams_all_complete(async_openai_client):
    async def one(index: int) -> str:
        stream = await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"client {index}"}], stream=True
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    async def all_streams() -> list[str]:
        return await asyncio.gather(*(one(index) for index in range(20)))

    texts = asyncio.run(all_streams())
    assert texts == [f"Hello! You said: client {index}" for index in range(20)]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-3-5-sonnet-20241022"])  # relay; translated (or LiteLLM)
def test_client_disconnect_closes_the_provider_stream_within_a_second(gateway_url, api_key, policy, fake_provider,
                                                                      model):  # fmt: skip
    fake_provider.chunk_delay = 0.2
    body = {"model": model, "messages": [{"role": "user", "content": "REPEAT 100"}], "stream": True}
    headers = {"Authorization": f"Bearer {api_key}"}
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", f"{gateway_url}/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_bytes():
            break  # first event seen: hang up
    hung_up = time.monotonic()
    deadline = hung_up + 3
    while fake_provider.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_provider.disconnects == 1
    assert fake_provider.disconnect_times[0] - hung_up < 1.0
