"""The fake provider speaks the OpenAI and Anthropic wire formats, records requests and fails on demand."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from tests.support.fake_provider import FakeProvider
from tests.support.live_server import free_port

HELLO = [{"role": "user", "content": "hi there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
CLAUDE_TOOL = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def chat(provider: FakeProvider, timeout: float = 10, **body) -> httpx.Response:
    body = {"model": "fake-model", "messages": HELLO, **body}
    headers = {"Authorization": "Bearer sk-test"}
    return httpx.post(f"{provider.openai_base}/chat/completions", json=body, headers=headers, timeout=timeout)


def messages(provider: FakeProvider, **body) -> httpx.Response:
    body = {"model": "claude-x", "max_tokens": 100, "messages": HELLO, **body}
    return httpx.post(f"{provider.anthropic_base}/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=10)


def sse_data(response: httpx.Response) -> list[str]:
    return [block.split("data: ", 1)[1] for block in response.text.split("\n\n") if "data: " in block]


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    blocks = [block.split("\n") for block in response.text.split("\n\n") if block]
    return [(event.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))) for event, data in blocks]


def wait_for(condition, seconds: float = 3) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_openai_reply_usage_and_recording(fake_provider):
    response = chat(fake_provider, response_format={"type": "json_object"})
    assert response.status_code == 200
    completion = response.json()
    assert completion["object"] == "chat.completion" and completion["id"].startswith("chatcmpl-fake-")
    assert completion["model"] == "fake-model" and completion["system_fingerprint"] == "fp_fake"
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! You said: hi there"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert completion["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    sent = fake_provider.last_request
    assert (sent.path, sent.headers["authorization"], sent.body["response_format"]) == (
        "/v1/chat/completions",
        "Bearer sk-test",
        {"type": "json_object"},
    )
    assert len(fake_provider.requests) == 1
    fake_provider.reset()
    assert fake_provider.requests == []
    with pytest.raises(IndexError):
        _ = fake_provider.last_request


def test_openai_limits_stop_n_repeat_and_content_parts(fake_provider):
    long = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "REPEAT 50"}]
    capped = chat(fake_provider, messages=long, max_tokens=7).json()
    assert capped["choices"][0] == {**capped["choices"][0], "finish_reason": "length"}
    assert capped["choices"][0]["message"]["content"] == "w1 w2 w3 w4 w5 w6 w7"
    assert capped["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}
    assert chat(fake_provider, messages=long, max_completion_tokens=3).json()["usage"]["completion_tokens"] == 3
    stopped = chat(fake_provider, stop=["said"], n=2).json()
    assert [choice["message"]["content"] for choice in stopped["choices"]] == ["Hello! You ", "Hello! You "]
    assert [choice["index"] for choice in stopped["choices"]] == [0, 1]
    parts = [{"role": "user", "content": [{"type": "text", "text": "a b"}, {"type": "text", "text": "c"}]}]
    assert chat(fake_provider, messages=parts).json()["choices"][0]["message"]["content"] == "Hello! You said: a b c"


def test_openai_stream_matches_the_json_text(fake_provider):
    whole = chat(fake_provider).json()["choices"][0]["message"]["content"]
    response = chat(fake_provider, stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    data = sse_data(response)
    assert data[-1] == "[DONE]"
    chunks = [orjson.loads(item) for item in data[:-1]]
    assert len({(chunk["id"], chunk["created"], chunk["model"]) for chunk in chunks}) == 1
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(chunks) == 2 + len(whole.split())
    assert "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks) == whole
    assert (chunks[-1]["choices"][0]["delta"], chunks[-1]["choices"][0]["finish_reason"]) == ({}, "stop")


def test_include_usage_and_fixed_chunk_count(fake_provider):
    fake_provider.stream_chunks = 20
    messages_ = [{"role": "user", "content": "REPEAT 30"}]
    data = sse_data(chat(fake_provider, messages=messages_, stream=True, stream_options={"include_usage": True}))
    chunks = [orjson.loads(item) for item in data[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 30
    content = [chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0]["delta"].get("content")]
    assert len(content) == 20
    assert "".join(chunk["choices"][0]["delta"]["content"] for chunk in content).split() == [
        f"w{index}" for index in range(1, 31)
    ]


def test_openai_tool_calls_json_stream_and_result(fake_provider):
    asked = [{"role": "user", "content": "weather?"}]
    message = chat(fake_provider, messages=asked, tools=[WEATHER_TOOL]).json()["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
            }
        ],
    }
    chunks = [
        orjson.loads(item)
        for item in sse_data(chat(fake_provider, messages=asked, tools=[WEATHER_TOOL], stream=True))[:-1]
    ]
    calls = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls") or []]
    assert len(calls) >= 3 and {call["index"] for call in calls} == {0}
    assert (calls[0]["id"], calls[0]["function"]["name"]) == ("call_fake_1", "get_weather")
    assert "".join(call["function"]["arguments"] for call in calls) == '{"location": "Paris"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    answered = [*asked, message["message"], {"role": "tool", "tool_call_id": "call_fake_1", "content": "sunny"}]
    reply = chat(fake_provider, messages=answered, tools=[WEATHER_TOOL]).json()["choices"][0]
    assert (reply["message"]["content"], reply["finish_reason"]) == ("Tool said: sunny", "stop")
    assert (
        chat(fake_provider, messages=asked, tools=[WEATHER_TOOL], tool_choice="none").json()["choices"][0][
            "finish_reason"
        ]
        == "stop"
    )


def test_the_openai_sdk_reads_json_and_streams(fake_provider):
    client = openai.OpenAI(base_url=fake_provider.openai_base, api_key="x", max_retries=0, timeout=10)
    completion = client.chat.completions.create(model="fake-model", messages=HELLO)
    assert completion.choices[0].message.content == "Hello! You said: hi there"
    assert completion.usage.total_tokens == 7
    stream = client.chat.completions.create(
        model="fake-model", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert (
        "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        == "Hello! You said: hi there"
    )
    assert chunks[-1].usage.completion_tokens == 5
    assert "fake-model" in [model.id for model in client.models.list()]


def test_anthropic_json_and_sse(fake_provider):
    system = [{"type": "text", "text": "be brief"}]
    reply = messages(fake_provider, system=system).json()
    assert reply["id"].startswith("msg_fake_") and reply["type"] == "message" and reply["model"] == "claude-x"
    assert reply["content"] == [{"type": "text", "text": "Hello! You said: hi there"}]
    assert (reply["stop_reason"], reply["stop_sequence"]) == ("end_turn", None)
    assert reply["usage"] == {"input_tokens": 4, "output_tokens": 5}
    assert fake_provider.last_request.path == "/v1/messages"
    capped = messages(fake_provider, max_tokens=2).json()
    assert (capped["content"][0]["text"], capped["stop_reason"]) == ("Hello! You", "max_tokens")
    stopped = messages(fake_provider, stop_sequences=["said"]).json()
    assert (stopped["content"][0]["text"], stopped["stop_reason"], stopped["stop_sequence"]) == (
        "Hello! You ",
        "stop_sequence",
        "said",
    )
    events = sse_events(messages(fake_provider, stream=True))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["usage"] == {"input_tokens": 2, "output_tokens": 1}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == "Hello! You said: hi there"
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    }


def test_anthropic_tool_use(fake_provider):
    asked = [{"role": "user", "content": "weather?"}]
    reply = messages(fake_provider, messages=asked, tools=[CLAUDE_TOOL]).json()
    assert reply["content"] == [
        {"type": "tool_use", "id": "toolu_fake_1", "name": "get_weather", "input": {"location": "Paris"}}
    ]
    assert reply["stop_reason"] == "tool_use"
    events = sse_events(messages(fake_provider, messages=asked, tools=[CLAUDE_TOOL], stream=True))
    assert events[1][1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_fake_1",
        "name": "get_weather",
        "input": {},
    }
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert len(deltas) >= 2 and {delta["type"] for delta in deltas} == {"input_json_delta"}
    assert orjson.loads("".join(delta["partial_json"] for delta in deltas)) == {"location": "Paris"}
    result = {"type": "tool_result", "tool_use_id": "toolu_fake_1", "content": [{"type": "text", "text": "sunny"}]}
    answered = [*asked, {"role": "assistant", "content": reply["content"]}, {"role": "user", "content": [result]}]
    final = messages(fake_provider, messages=answered, tools=[CLAUDE_TOOL]).json()
    assert (final["content"][0]["text"], final["stop_reason"]) == ("Tool said: sunny", "end_turn")


def test_status_fault_is_served_once_in_each_wire_shape(fake_provider):
    fake_provider.fail_next("status", status=429, headers={"retry-after": "7"})
    fake_provider.fail_next("status", status=503)
    fake_provider.fail_next("status", status=400, body={"error": {"message": "custom"}})
    limited = chat(fake_provider)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert limited.json() == {
        "error": {"message": "fake provider error 429", "type": "server_error", "param": None, "code": None}
    }
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
        cwd=Path(__file__).resolve().parent.parent,
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


def test_litellm_talks_to_both_wire_formats(fake_provider):
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    import litellm

    async def both() -> list:
        results = []
        for model, base in [
            ("openai/fake-model", fake_provider.openai_base),
            ("anthropic/claude-3-5-sonnet-20241022", fake_provider.anthropic_base),
        ]:
            options = {"model": model, "api_base": base, "api_key": "x", "messages": HELLO, "max_retries": 0}
            whole = await litellm.acompletion(**options)
            stream = await litellm.acompletion(**options, stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
            results.append((whole.choices[0].message.content, whole.usage.completion_tokens, text))
        return results

    assert asyncio.run(both()) == [("Hello! You said: hi there", 5, "Hello! You said: hi there")] * 2
    paths = [request.path for request in fake_provider.requests]
    assert paths == ["/v1/chat/completions"] * 2 + ["/v1/messages"] * 2


# The providers' contracts the fake keeps (see its docstring and the README)


@pytest.mark.parametrize("model", ["hosted_vllm/fake-model", "gpt-9", "openai/fake-model"])
def test_openai_refuses_a_model_it_does_not_serve_with_openais_body(fake_provider, model):
    response = chat(fake_provider, model=model)
    assert response.status_code == 404
    assert response.json() == {"error": {
        "message": f"The model `{model}` does not exist or you do not have access to it.",
        "type": "invalid_request_error", "param": None, "code": "model_not_found",
    }}  # fmt: skip


@pytest.mark.parametrize("model", ["o1", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"])
def test_openai_reasoning_models_refuse_max_tokens_and_take_max_completion_tokens(fake_provider, model):
    refused = chat(fake_provider, model=model, max_tokens=5)
    assert refused.status_code == 400
    assert refused.json() == {"error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                   "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter",
    }}  # fmt: skip
    answered = chat(fake_provider, model=model, max_completion_tokens=2, messages=[{"role": "user", "content": "hi"}])
    assert answered.json()["choices"][0]["message"]["content"] == "Hello! You"


def test_non_reasoning_models_still_take_max_tokens(fake_provider):
    assert chat(fake_provider, model="gpt-4o-mini", max_tokens=2).status_code == 200


@pytest.mark.parametrize("field", ["extra_body", "top_logprobs", "chat_template_kwargs"])
def test_anthropic_refuses_unknown_top_level_fields_with_anthropics_body(fake_provider, field):
    response = messages(fake_provider, **{field: {}})
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": f"{field}: Extra inputs are not permitted"},
    }


def test_anthropic_takes_its_own_fields_and_requires_max_tokens(fake_provider):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    assert messages(fake_provider, top_k=5, thinking=thinking, metadata={"user_id": "u"}).status_code == 200
    body = {"model": "claude-x", "messages": HELLO}
    response = httpx.post(f"{fake_provider.anthropic_base}/v1/messages", json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


def test_a_big_line_fault_sends_one_delta_of_several_mebibytes_in_one_line(fake_provider):
    fake_provider.fail_next("big_line", size=3 * 1024 * 1024)
    response = chat(fake_provider, stream=True)
    lines = response.content.split(b"\n\n")
    assert max(len(line) for line in lines) > 3 * 1024 * 1024
    data = [orjson.loads(item) for item in sse_data(response)[:-1]]
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in data)
    assert text == "A" * (3 * 1024 * 1024) + "Hello! You said: hi there"
