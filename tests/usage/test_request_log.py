"""One request-log row per request, with the provider's token counts and an honest end reason."""

import time

import httpx
import openai
import pytest

from tests.usage.conftest import wait_for_rows

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]


def test_non_streaming_request_is_logged_with_provider_usage(openai_client):
    openai_client.chat.completions.create(model="fast", messages=HELLO)
    [row] = wait_for_rows(1)
    assert (row.key_name, row.requested_model, row.resolved_model, row.litellm_model) == (
        "test-app", "fast", "gpt-4o-mini", "openai/fake-model",
    )  # fmt: skip
    assert (row.status, row.end_reason, row.streamed) == (200, "completed", False)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens, row.usage_estimated) == (2, 5, 7, False)
    assert row.latency_ms > 0 and row.ttft_ms is None
    assert row.cost_usd is None  # a fake model is not in LiteLLM's cost map


def test_stream_is_logged_once_with_usage_even_when_the_client_did_not_ask(openai_client, fake_provider):
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    assert all(chunk.usage is None for chunk in chunks)  # the client did not ask: no usage chunk forwarded
    assert fake_provider.last_request.body["stream_options"] == {"include_usage": True}
    [row] = wait_for_rows(1)
    assert (row.streamed, row.status, row.end_reason) == (True, 200, "completed")
    assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (2, 5, False)
    assert row.ttft_ms is not None and row.ttft_ms <= row.latency_ms


def test_stream_with_include_usage_forwards_exactly_one_usage_chunk(openai_client):
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert sum(1 for chunk in chunks if chunk.usage) == 1
    [row] = wait_for_rows(1)
    assert (row.prompt_tokens, row.completion_tokens) == (2, 5)


def test_known_model_gets_a_cost(gateway_url, api_key, fake_provider):
    from routing.services import create_model

    create_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base)
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    [row] = wait_for_rows(1)
    assert row.cost_usd is not None and row.cost_usd > 0


def test_rejections_are_logged(gateway_url, api_key, policy):
    def post(headers: dict, body: dict) -> int:
        return httpx.post(f"{gateway_url}/v1/chat/completions", json=body, headers=headers).status_code

    assert post({}, {"model": "fast", "messages": HELLO}) == 401
    assert post({"Authorization": f"Bearer {api_key}"}, {"model": "nope", "messages": HELLO}) == 400
    assert post({"Authorization": f"Bearer {api_key}"}, {"model": "fast", "messages": []}) == 400
    rows = wait_for_rows(3)
    assert [(r.status, r.end_reason) for r in rows] == [(401, "rejected"), (400, "rejected"), (400, "rejected")]
    assert [r.key_name for r in rows] == ["", "test-app", "test-app"]
    assert rows[1].requested_model == "nope" and rows[1].error_code == "model_not_found"


def test_provider_errors_are_logged(openai_client, fake_provider):
    fake_provider.fail_next("status", status=500)
    with pytest.raises(openai.APIStatusError):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    [row] = wait_for_rows(1)
    assert (row.status, row.end_reason, row.error_code) == (502, "provider_error", "provider_error")


def test_cut_stream_is_logged_with_estimated_usage(openai_client, fake_provider):
    fake_provider.chunk_delay = 0.05  # a provider that dies mid-generation
    fake_provider.fail_next("cut", after=3)
    with pytest.raises(openai.APIError):
        list(
            openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "REPEAT 30"}], stream=True
            )
        )
    [row] = wait_for_rows(1)
    assert (row.streamed, row.end_reason) == (True, "provider_error")
    assert row.usage_estimated and row.prompt_tokens > 0 and 0 < row.completion_tokens < 30


def test_client_disconnect_is_logged_with_tokens_delivered_so_far(gateway_url, api_key, policy, fake_provider):
    fake_provider.chunk_delay = 0.1
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "REPEAT 200"}], "stream": True}
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST", f"{gateway_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {api_key}"}
        ) as response,  # fmt: skip
    ):
        received = 0
        for line in response.iter_lines():
            received += line.startswith("data: ")
            if received >= 5:
                break
    [row] = wait_for_rows(1)
    assert (row.end_reason, row.streamed, row.usage_estimated) == ("client_disconnected", True, True)
    assert 0 < row.completion_tokens < 200


def test_slow_non_streaming_call_abandoned_by_the_client_is_logged(gateway_url, api_key, policy, fake_provider):
    fake_provider.fail_next("slow", delay=5)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway_url}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=0.5,
        )
    gave_up = time.monotonic()
    [row] = wait_for_rows(1)
    assert row.end_reason == "client_disconnected"
    deadline = time.monotonic() + 3
    while fake_provider.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_provider.disconnects == 1  # the provider call was cancelled too, within a second
    assert fake_provider.disconnect_times[0] - gave_up < 1.0
