"""Provider faults become documented statuses or one SSE error event; the next request is served normally."""

import httpx
import openai
import pytest

from tests.support.live_server import free_port
from tests.support.request_log import logged_rows

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi"}]


def assert_openai_error_shape(body: dict) -> dict:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def post(gateway_url: str, api_key: str, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("status", "headers", "expected_status", "expected_retry_after"),
    [
        (500, None, 502, None),
        (502, None, 502, None),
        (503, None, 503, None),
        (429, {"retry-after": "7"}, 429, "7"),
        (429, None, 429, None),
        (401, None, 502, None),
        (400, None, 400, None),
    ],
)
def test_provider_status_is_mapped(
    gateway_url, api_key, policy, fake_provider, status, headers, expected_status, expected_retry_after
):
    fake_provider.fail_next("status", status=status, headers=headers)
    response = post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO})
    assert response.status_code == expected_status
    error = assert_openai_error_shape(response.json())
    assert response.headers.get("retry-after") == expected_retry_after
    assert "llmproxy-no-key" not in response.text
    if status == 401:
        assert "gpt-4o-mini" in error["message"]
    if expected_retry_after is not None:
        # A provider that asks for time gets it: the model's only deployment cools down for that long, and callers
        # get an immediate 503 meanwhile instead of a retry storm.
        seen = len(fake_provider.requests)
        cooling = post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO})
        assert cooling.status_code == 503 and cooling.json()["error"]["code"] == "deployment_cooling_down"
        assert 1 <= int(cooling.headers["retry-after"]) <= int(expected_retry_after)
        assert len(fake_provider.requests) == seen
        from api.gateway import gateway

        gateway.health.reset()
    # The next request is served normally, and the log says what happened to each.
    assert post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO}).status_code == 200
    failed, *_, served = logged_rows()
    assert (failed.status, failed.end_reason, failed.error_code) == (expected_status, "provider_error", error["code"])
    assert (served.status, served.end_reason) == (200, "completed")


def test_provider_error_before_the_first_chunk_is_a_real_http_status(gateway_url, api_key, policy, fake_provider):
    fake_provider.fail_next("status", status=503)
    response = post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert_openai_error_shape(response.json())


def test_invalid_json_from_the_provider_is_a_502(gateway_url, api_key, policy, fake_provider):
    fake_provider.fail_next("invalid_json")
    response = post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO})
    assert response.status_code == 502
    assert_openai_error_shape(response.json())


def test_provider_timeout_is_a_504_within_the_model_timeout(gateway_url, api_key, policy, fake_provider):
    from routing.services import create_model

    create_model("slowpoke", litellm_model="openai/fake-slow", api_base=fake_provider.openai_base, timeout_seconds=1)
    fake_provider.fail_next("slow", delay=5)
    response = post(gateway_url, api_key, {"model": "slowpoke", "messages": HELLO})
    assert response.status_code == 504
    assert response.elapsed.total_seconds() < 4
    assert assert_openai_error_shape(response.json())["type"] == "timeout"


def test_unreachable_provider_is_a_502(gateway_url, api_key, policy):
    from routing.services import create_model

    create_model("nowhere", litellm_model="openai/x", api_base=f"http://127.0.0.1:{free_port()}/v1")
    response = post(gateway_url, api_key, {"model": "nowhere", "messages": HELLO})
    assert response.status_code == 502
    assert assert_openai_error_shape(response.json())["code"] == "provider_unreachable"


def read_sse(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.text.split("\n\n") if line.startswith("data: ")]


def test_stream_cut_midway_ends_with_one_error_event_and_no_done(gateway_url, api_key, policy, fake_provider):
    fake_provider.fail_next("cut", after=2)
    response = post(
        gateway_url,
        api_key,
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "REPEAT 20"}], "stream": True},
    )
    assert response.status_code == 200
    events = read_sse(response)
    assert events[-1] != "[DONE]"
    assert '"error"' in events[-1]
    assert sum('"error"' in event for event in events) == 1


def test_error_event_inside_a_provider_stream_is_relayed_as_one_error_event(
    gateway_url, api_key, policy, fake_provider
):
    fake_provider.fail_next("stream_error")
    response = post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
    events = read_sse(response)
    assert "[DONE]" not in events
    assert sum('"error"' in event for event in events) == 1


def test_sse_framing_and_headers(gateway_url, api_key, policy):
    response = post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.text.endswith("data: [DONE]\n\n")
    assert all(block.startswith("data: ") for block in response.text.split("\n\n") if block)


def test_sdk_sees_a_cut_stream_as_an_error(openai_client, fake_provider):
    fake_provider.fail_next("cut", after=2)
    with pytest.raises(openai.APIError):
        list(
            openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "REPEAT 20"}], stream=True
            )
        )


def test_provider_refusing_our_credentials_names_the_model_not_the_key(
    gateway_url, api_key, policy, fake_provider, monkeypatch
):
    from routing.services import create_model

    secret = "sk-provider-secret-0123456789abcdef"
    monkeypatch.setenv("LLMPROXY_PROVIDER_KEY_FAKE", secret)
    create_model(
        "keyed",
        litellm_model="openai/fake-keyed",
        api_base=fake_provider.openai_base,
        api_key_env="LLMPROXY_PROVIDER_KEY_FAKE",
    )
    fake_provider.fail_next("status", status=401, body={"error": {"message": f"Incorrect API key: {secret}"}})
    response = post(gateway_url, api_key, {"model": "keyed", "messages": HELLO})
    assert response.status_code == 502
    assert "keyed" in assert_openai_error_shape(response.json())["message"]
    assert secret not in response.text and secret[:12] not in response.text
    assert fake_provider.last_request.headers["authorization"] == f"Bearer {secret}"


def test_dns_failure_is_a_502_and_the_next_request_is_served(gateway_url, api_key, policy):
    from routing.services import create_model

    create_model("no-dns", litellm_model="openai/x", api_base="http://no-such-host.invalid/v1")
    response = post(gateway_url, api_key, {"model": "no-dns", "messages": HELLO})
    assert response.status_code == 502
    assert assert_openai_error_shape(response.json())["code"] == "provider_unreachable"
    assert post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO}).status_code == 200


def test_provider_stalling_mid_stream_ends_with_a_timeout_event_within_the_model_timeout(
    gateway_url, api_key, policy, fake_provider
):
    from routing.services import create_model

    create_model("staller", litellm_model="openai/fake-stall", api_base=fake_provider.openai_base, timeout_seconds=1)
    fake_provider.fail_next("stall", after=2)
    body = {"model": "staller", "messages": [{"role": "user", "content": "REPEAT 20"}], "stream": True}
    response = post(gateway_url, api_key, body)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < 4
    events = read_sse(response)
    assert "[DONE]" not in events
    assert sum('"error"' in event for event in events) == 1
    assert '"type":"timeout"' in events[-1]
    [row] = logged_rows()
    assert (row.status, row.end_reason, row.streamed) == (504, "timeout", True)
    assert post(gateway_url, api_key, {"model": "gpt-4o-mini", "messages": HELLO}).status_code == 200


def test_retries_happen_only_before_the_first_byte(gateway_url, api_key, policy, fake_provider):
    from routing.services import create_model

    create_model("retrying", litellm_model="openai/fake-retry", api_base=fake_provider.openai_base, num_retries=1)
    fake_provider.fail_next("status", status=503)
    assert post(gateway_url, api_key, {"model": "retrying", "messages": HELLO}).status_code == 200
    assert len(fake_provider.requests) == 2  # the failure, then the retry

    fake_provider.reset()
    fake_provider.fail_next("cut", after=2)
    body = {"model": "retrying", "messages": [{"role": "user", "content": "REPEAT 20"}], "stream": True}
    events = read_sse(post(gateway_url, api_key, body))
    assert '"error"' in events[-1]
    assert len(fake_provider.requests) == 1  # bytes had reached the client: no retry
