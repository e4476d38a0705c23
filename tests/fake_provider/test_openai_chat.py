"""The fake provider speaks OpenAI's Chat Completions wire format and keeps its contracts."""

import openai
import orjson
import pytest

from tests.fake_provider.helpers import HELLO, WEATHER_TOOL, chat, sse_data


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


def test_a_big_line_fault_sends_one_delta_of_several_mebibytes_in_one_line(fake_provider):
    fake_provider.fail_next("big_line", size=3 * 1024 * 1024)
    response = chat(fake_provider, stream=True)
    lines = response.content.split(b"\n\n")
    assert max(len(line) for line in lines) > 3 * 1024 * 1024
    data = [orjson.loads(item) for item in sse_data(response)[:-1]]
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in data)
    assert text == "A" * (3 * 1024 * 1024) + "Hello! You said: hi there"
