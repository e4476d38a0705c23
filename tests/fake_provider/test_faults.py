"""The fake provider records requests and fails on demand (faults, disconnects, stop, standalone)."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fake_provider.helpers import chat, messages, sse_data, sse_events, wait_for
from tests.support.fake_provider import FakeProvider
from tests.support.live_server import free_port


def test_status_fault_is_served_once_in_each_wire_shape(fake_provider):
    fake_provider.fail_next("status", status=429, headers={"retry-after": "7"})
    fake_provider.fail_next("status", status=503)
    fake_provider.fail_next("status", status=400, body={"error": {"message": "custom"}})
    limited = chat(fake_provider)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert limited.json() == {
        "error": {"message": "fake provider error 429", "type": "requests", "param": None,
                  "code": "rate_limit_exceeded"}
    }  # fmt: skip
    assert messages(fake_provider).json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "fake provider error 503"},
    }
    assert chat(fake_provider, stream=True).json() == {"error": {"message": "custom"}}
    assert chat(fake_provider).status_code == 200
    assert len(fake_provider.requests) == 4


def test_bad_requests(fake_provider):
    response = httpx.post(f"{fake_provider.openai_base}/chat/completions", content=b"{nope", timeout=5)
    assert response.status_code == 400 and set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert fake_provider.last_request.body == {}
    assert httpx.get(f"{fake_provider.url}/elsewhere", timeout=5).status_code == 404
    with pytest.raises(ValueError):
        fake_provider.fail_next("explode")


def test_slow_fault_delays_the_headers_and_counts_a_client_that_gives_up(fake_provider):
    fake_provider.fail_next("slow", delay=0.5)
    started = time.monotonic()
    assert chat(fake_provider).json()["choices"][0]["message"]["content"] == "Hello! You said: hi there"
    assert time.monotonic() - started >= 0.5
    fake_provider.fail_next("slow", delay=5)
    with pytest.raises(httpx.ReadTimeout):
        chat(fake_provider, timeout=0.3)
    assert wait_for(lambda: fake_provider.disconnects == 1)


def test_hang_fault_counts_the_disconnect(fake_provider):
    fake_provider.fail_next("hang")
    with pytest.raises(httpx.ReadTimeout):
        chat(fake_provider, timeout=0.3)
    assert wait_for(lambda: fake_provider.disconnects == 1)
    time.sleep(0.1)
    assert fake_provider.disconnects == 1


def test_cut_fault_truncates_a_stream_and_drops_a_plain_request(fake_provider):
    fake_provider.fail_next("cut", after=2)
    received = []
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "REPEAT 20"}], "stream": True}
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):  # noqa: SIM117
        with httpx.stream("POST", f"{fake_provider.openai_base}/chat/completions", json=body, timeout=5) as response:
            assert response.status_code == 200
            received.extend(response.iter_lines())
    data = [line.removeprefix("data: ") for line in received if line.startswith("data: ")]
    assert [orjson.loads(item)["choices"][0]["delta"].get("content") for item in data] == ["", "w1 ", "w2 "]
    fake_provider.fail_next("cut")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        chat(fake_provider)
    assert fake_provider.disconnects == 0
    assert chat(fake_provider).status_code == 200


def test_invalid_json_fault(fake_provider):
    fake_provider.fail_next("invalid_json")
    fake_provider.fail_next("invalid_json")
    plain = chat(fake_provider)
    assert (plain.status_code, plain.headers["content-type"]) == (200, "application/json")
    with pytest.raises(ValueError):
        plain.json()
    streamed = chat(fake_provider, stream=True)
    assert streamed.text == "data: {not json\n\n"


def test_stream_error_fault_in_both_formats(fake_provider):
    fake_provider.fail_next("stream_error")
    fake_provider.fail_next("stream_error")
    data = sse_data(chat(fake_provider, stream=True))
    assert "[DONE]" not in data and len(data) == 3
    assert orjson.loads(data[-1]) == {
        "error": {"message": "fake mid-stream error", "type": "server_error", "param": None, "code": None}
    }
    events = sse_events(messages(fake_provider, stream=True))
    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "error",
    ]  # fmt: skip
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "fake mid-stream error"}}


def test_client_leaving_a_slow_stream_is_counted_once(fake_provider):
    fake_provider.chunk_delay = 0.1
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "REPEAT 100"}], "stream": True}
    with (
        httpx.Client(timeout=5) as http,
        http.stream("POST", f"{fake_provider.openai_base}/chat/completions", json=body) as response,
    ):
        next(response.iter_bytes())
    assert wait_for(lambda: fake_provider.disconnects == 1)
    time.sleep(0.3)
    assert fake_provider.disconnects == 1


def test_stop_does_not_wait_for_a_hung_request():
    provider = FakeProvider().start()
    provider.fail_next("hang")
    errors = []

    def hung_client() -> None:
        try:
            chat(provider)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=hung_client, daemon=True)
    thread.start()
    assert wait_for(lambda: len(provider.requests) == 1)
    started = time.monotonic()
    provider.stop()
    assert time.monotonic() - started < 2
    thread.join(timeout=2)
    assert provider.disconnects == 0
    assert [type(error) for error in errors] == [httpx.RemoteProtocolError]


def test_runs_standalone_until_sigterm():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_provider", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == f"fake provider listening on http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).json()["data"][0]["id"] == "fake-model"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
