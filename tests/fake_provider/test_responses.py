"""The fake provider speaks OpenAI's Responses API (POST /v1/responses), plain and streaming, with its contracts."""

import asyncio

import httpx
import openai
import orjson
import pytest

from tests.fake_provider.helpers import post, sse_events

FUNCTION_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def respond(provider, **body) -> httpx.Response:
    return post(provider, "/responses", {"model": "gpt-4o-mini", "input": "hi there", **body})


def test_a_plain_response_with_output_text_and_usage(fake_provider):
    response = respond(fake_provider, instructions="be brief")
    assert response.status_code == 200
    reply = response.json()
    assert reply["id"].startswith("resp_fake_") and reply["object"] == "response"
    assert (reply["status"], reply["model"], reply["instructions"], reply["store"]) == (
        "completed", "gpt-4o-mini", "be brief", True,
    )  # fmt: skip
    [message] = reply["output"]
    assert (message["type"], message["role"], message["status"]) == ("message", "assistant", "completed")
    assert message["content"] == [{"type": "output_text", "text": "Hello! You said: hi there", "annotations": [],
                                   "logprobs": []}]  # fmt: skip
    assert reply["usage"] == {
        "input_tokens": 4, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 9,
    }  # fmt: skip
    assert fake_provider.last_request.path == "/v1/responses"


def test_input_items_cache_and_reasoning_models(fake_provider):
    items = [
        {"role": "developer", "content": "be brief"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "CACHE a b c"}]},
    ]
    reply = respond(fake_provider, input=items).json()
    assert reply["output"][0]["content"][0]["text"] == "Hello! You said: CACHE a b c"
    assert reply["usage"]["input_tokens"] == 6 and reply["usage"]["input_tokens_details"]["cached_tokens"] == 3
    reasoning = respond(fake_provider, model="o4-mini").json()
    assert [item["type"] for item in reasoning["output"]] == ["reasoning", "message"]
    assert reasoning["usage"]["output_tokens_details"] == {"reasoning_tokens": 8}
    assert reasoning["usage"]["output_tokens"] == 5 + 8


def test_max_output_tokens_below_16_is_refused_and_reaching_it_is_incomplete(fake_provider):
    refused = respond(fake_provider, max_output_tokens=10)
    assert refused.status_code == 400
    assert refused.json() == {"error": {
        "message": "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 10 "
                   "instead.",
        "type": "invalid_request_error", "param": "max_output_tokens", "code": "integer_below_min_value",
    }}  # fmt: skip
    cut = respond(fake_provider, input="REPEAT 40", max_output_tokens=16).json()
    assert (cut["status"], cut["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert cut["output"][0]["status"] == "incomplete" and cut["usage"]["output_tokens"] == 16
    assert len(cut["output"][0]["content"][0]["text"].split()) == 16


def test_refusals_use_openais_error_body(fake_provider):
    unknown = respond(fake_provider, model="claude-x")
    assert unknown.status_code == 400
    message = "The requested model 'claude-x' does not exist."
    assert unknown.json()["error"] == {"message": message, "type": "invalid_request_error", "param": "model",
                                       "code": "model_not_found"}  # fmt: skip
    extra = respond(fake_provider, api_base="http://elsewhere").json()["error"]
    assert (extra["message"], extra["param"], extra["code"]) == ("Unknown parameter: 'api_base'.", "api_base",
                                                                 "unknown_parameter")  # fmt: skip
    missing = post(fake_provider, "/responses", {"model": "gpt-4o"}).json()["error"]
    assert (missing["param"], missing["code"]) == ("input", "missing_required_parameter")
    assert respond(fake_provider, input=[{"content": "no role"}]).json()["error"]["param"] == "input[0]"
    assert respond(fake_provider, input=42).status_code == 400


def test_stored_responses_continue_and_unknown_ids_are_refused(fake_provider):
    first = respond(fake_provider).json()
    second = respond(fake_provider, input="and then", previous_response_id=first["id"]).json()
    assert second["previous_response_id"] == first["id"]
    assert second["usage"]["input_tokens"] == first["usage"]["total_tokens"] + 2
    unstored = respond(fake_provider, store=False).json()
    assert unstored["store"] is False
    for previous in (unstored["id"], "resp_unknown"):
        refused = respond(fake_provider, previous_response_id=previous)
        assert refused.status_code == 400
        assert refused.json()["error"] == {"message": f"Previous response with id '{previous}' not found.",
                                           "type": "invalid_request_error", "param": "previous_response_id",
                                           "code": "previous_response_not_found"}  # fmt: skip
    fake_provider.reset()
    assert respond(fake_provider, previous_response_id=first["id"]).status_code == 400


def test_function_tools_are_called_and_their_output_answered(fake_provider):
    called = respond(fake_provider, tools=[FUNCTION_TOOL]).json()
    [call] = called["output"]
    assert call == {"type": "function_call", "id": call["id"], "call_id": "call_fake_1", "name": "get_weather",
                    "arguments": '{"location": "Paris"}', "status": "completed"}  # fmt: skip
    answer = {"type": "function_call_output", "call_id": "call_fake_1", "output": "sunny"}
    followed = respond(fake_provider, input=[answer], tools=[FUNCTION_TOOL], previous_response_id=called["id"]).json()
    assert followed["output"][0]["content"][0]["text"] == "Tool said: sunny"
    plain = respond(fake_provider, tools=[FUNCTION_TOOL], tool_choice="none").json()
    assert plain["output"][0]["type"] == "message"


def test_a_stream_of_typed_events_with_sequence_numbers(fake_provider):
    response = respond(fake_provider, stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    names = [name for name, _ in events]
    assert names[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]  # fmt: skip
    assert names[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    assert all(data["type"] == name for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[0][1]["response"]["status"] == "in_progress" and events[0][1]["response"]["usage"] is None
    deltas = [data["delta"] for name, data in events if name == "response.output_text.delta"]
    assert "".join(deltas) == "Hello! You said: hi there" == events[-4][1]["text"]
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["usage"]["total_tokens"] == 7
    assert final["output"][0]["content"][0]["text"] == "Hello! You said: hi there"


def test_a_streamed_function_call_and_an_incomplete_stream(fake_provider):
    events = sse_events(respond(fake_provider, stream=True, tools=[FUNCTION_TOOL]))
    names = [name for name, _ in events]
    assert names[2] == "response.output_item.added" and events[2][1]["item"]["arguments"] == ""
    pieces = [data["delta"] for name, data in events if name == "response.function_call_arguments.delta"]
    assert len(pieces) >= 2 and orjson.loads("".join(pieces)) == {"location": "Paris"}
    assert names[-3:] == ["response.function_call_arguments.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    cut = sse_events(respond(fake_provider, stream=True, input="REPEAT 30", max_output_tokens=16))
    assert cut[-1][0] == "response.incomplete" and cut[-1][1]["response"]["usage"]["output_tokens"] == 16


def test_faults_in_the_responses_wire_format(fake_provider):
    fake_provider.fail_next("stream_error")
    events = sse_events(respond(fake_provider, stream=True))
    assert [name for name, _ in events][-3:] == ["response.output_text.delta", "error", "response.failed"]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[-2][1]["code"] == "server_error" and events[-2][1]["message"] == "fake mid-stream error"
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "server_error",
                                                                "message": "fake mid-stream error"}  # fmt: skip
    fake_provider.fail_next("status", status=429)
    limited = respond(fake_provider)
    assert limited.status_code == 429 and limited.json()["error"]["message"] == "fake provider error 429"
    fake_provider.fail_next("invalid_json")
    assert respond(fake_provider, stream=True).text == "event: response.created\ndata: {not json\n\n"
    fake_provider.fail_next("cut", after=1)
    with pytest.raises(httpx.RemoteProtocolError):
        respond(fake_provider, stream=True, input="REPEAT 10")
    fake_provider.fail_next("big_line", size=2 * 1024 * 1024)
    big = sse_events(respond(fake_provider, stream=True))
    deltas = [data["delta"] for name, data in big if name == "response.output_text.delta"]
    assert deltas[0] == "A" * (2 * 1024 * 1024) and big[-1][0] == "response.completed"


def test_the_openai_sdk_creates_streams_and_calls_tools(fake_provider):
    client = openai.OpenAI(base_url=fake_provider.openai_base, api_key="sk-test", max_retries=0)
    response = client.responses.create(model="gpt-4o-mini", input="hi there", instructions="be brief")
    assert response.output_text == "Hello! You said: hi there"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 5)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    follow = client.responses.create(model="gpt-4o-mini", input="more", previous_response_id=response.id)
    assert follow.previous_response_id == response.id
    stream = client.responses.create(model="gpt-4o-mini", input="hi there", stream=True)
    events = list(stream)
    assert "".join(event.delta for event in events if event.type == "response.output_text.delta") == (
        "Hello! You said: hi there"
    )
    assert events[-1].type == "response.completed" and events[-1].response.usage.total_tokens == 7
    with client.responses.stream(model="gpt-4o-mini", input="hi there", tools=[FUNCTION_TOOL]) as managed:
        final = managed.get_final_response()
    assert final.output[0].type == "function_call" and final.output[0].arguments == '{"location": "Paris"}'
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt-4o-mini", input="x", max_output_tokens=10)
    assert refused.value.code == "integer_below_min_value"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.create(model="gpt-4o-mini", input="x", previous_response_id="resp_nope")
    assert unknown.value.code == "previous_response_not_found"


def test_the_openai_agents_sdk_runs_a_tool_loop_on_its_default_responses_model(fake_provider):
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)

    @function_tool
    def get_weather(location: str) -> str:
        return f"sunny in {location}"

    async def run_both() -> tuple[str, str]:
        client = openai.AsyncOpenAI(base_url=fake_provider.openai_base, api_key="sk-test", max_retries=0)
        model = OpenAIResponsesModel("gpt-4o-mini", client)
        agent = Agent(name="weather", instructions="be brief", model=model, tools=[get_weather])
        plain = await Runner.run(agent, "weather?")
        streamed = Runner.run_streamed(agent, "weather?")
        async for _ in streamed.stream_events():
            pass
        return plain.final_output, streamed.final_output

    assert asyncio.run(run_both()) == ("Tool said: sunny in Paris", "Tool said: sunny in Paris")
    bodies = [request.body for request in fake_provider.requests]
    assert [body.get("stream", False) for body in bodies] == [False, False, True, True]
    assert bodies[1]["input"][-1] == {"call_id": "call_fake_1", "output": "sunny in Paris",
                                      "type": "function_call_output"}  # fmt: skip
