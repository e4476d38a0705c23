import orjson
import pytest

from api.errors import GatewayError
from api.schemas import CONTROL_FIELDS, parse_chat_request

MESSAGES = [{"role": "user", "content": "hi"}]


def parse(**body):
    return parse_chat_request(orjson.dumps(body))


def error_of(body: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        parse_chat_request(body)
    assert caught.value.status == 400
    return caught.value


def test_fields_are_split_into_validated_pass_through_and_extra_body():
    chat = parse(
        model="m", messages=MESSAGES, stream=True, temperature=0.2, stop=["x"], seed=7, n=2,
        response_format={"type": "json_object"}, user="u1", my_vendor_flag={"a": 1},
    )  # fmt: skip
    assert chat.model == "m" and chat.stream is True
    assert chat.params == {
        "temperature": 0.2,
        "stop": ["x"],
        "seed": 7,
        "n": 2,
        "response_format": {"type": "json_object"},
        "user": "u1",
    }
    assert chat.extra_body == {"my_vendor_flag": {"a": 1}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (orjson.dumps({"model": "m"}), "messages"),
        (orjson.dumps({"model": "m", "messages": []}), "messages"),
        (orjson.dumps({"messages": MESSAGES}), "model"),
        (orjson.dumps({"model": "m", "messages": MESSAGES, "temperature": 2.5}), "temperature"),
        (orjson.dumps({"model": "m", "messages": MESSAGES, "top_p": -0.1}), "top_p"),
        (orjson.dumps({"model": "m", "messages": MESSAGES, "presence_penalty": 3}), "presence_penalty"),
        (orjson.dumps({"model": "m", "messages": MESSAGES, "frequency_penalty": -2.5}), "frequency_penalty"),
        (orjson.dumps({"model": "m", "messages": MESSAGES, "max_tokens": 0}), "max_tokens"),
        (orjson.dumps({"model": "m", "messages": MESSAGES, "max_completion_tokens": -1}), "max_completion_tokens"),
        (orjson.dumps({"model": "m", "messages": [{"content": "no role"}]}), "messages.[0].role"),
        (orjson.dumps({"model": "m", "messages": ["just a string"]}), "messages.[0]"),
        (orjson.dumps({"model": "m", "messages": MESSAGES, "tools": "nope"}), "tools"),
    ],
)
def test_invalid_requests_name_the_field(body, param):
    error = error_of(body)
    assert error.param == param
    assert error.as_dict()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("field", sorted(CONTROL_FIELDS))
def test_litellm_control_fields_are_refused(field):
    error = error_of(orjson.dumps({"model": "m", "messages": MESSAGES, field: "http://evil.example"}))
    assert error.param == field
    assert error.code == "forbidden_parameter"


# The shapes of messages, tools, tool_choice, stop, stream and stream_options.

ASSISTANT_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def invalid(**fields) -> GatewayError:
    return error_of(orjson.dumps({"model": "m", "messages": MESSAGES, **fields}))


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "bot", "content": "x"}], "messages.[0].role"),
        ([{"role": 3, "content": "x"}], "messages.[0].role"),
        ([{"role": "user", "content": 5}], "messages.[0].content"),
        ([{"role": "user", "content": {"text": "x"}}], "messages.[0].content"),
        ([{"role": "user"}], "messages.[0].content"),
        ([{"role": "user", "content": None}], "messages.[0].content"),
        ([{"role": "system", "content": "x"}, {"role": "assistant", "content": None}], "messages.[1].content"),
        ([{"role": "user", "content": ["text"]}], "messages.[0].content.[0]"),
        ([{"role": "user", "content": [{"text": "x"}]}], "messages.[0].content.[0].type"),
        ([{"role": "user", "content": [{"type": 7}]}], "messages.[0].content.[0].type"),
        ([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text"}]}],
         "messages.[0].content.[1].text"),
        ([{"role": "user", "content": [{"type": "text", "text": None}]}], "messages.[0].content.[0].text"),
        ([{"role": "tool", "content": "sunny"}], "messages.[0].tool_call_id"),
        ([{"role": "tool", "content": "sunny", "tool_call_id": 1}], "messages.[0].tool_call_id"),
        ([{"role": "function", "content": "sunny"}], "messages.[0].name"),
        ([{**ASSISTANT_CALL, "tool_calls": "call"}], "messages.[0].tool_calls"),
        ([{**ASSISTANT_CALL, "tool_calls": [{"type": "function"}]}], "messages.[0].tool_calls.[0].id"),
        ([{**ASSISTANT_CALL, "tool_calls": [{"id": "c", "type": "function"}]}], "messages.[0].tool_calls.[0].function"),
        (
            [{**ASSISTANT_CALL, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}],
            "messages.[0].tool_calls.[0].function.arguments",
        ),
        ([{"role": "assistant", "content": None, "function_call": {"name": 1, "arguments": ""}}],
         "messages.[0].function_call.name"),
        ([*MESSAGES, "not an object"], "messages.[1]"),
        ("hi", "messages"),
        ({"role": "user", "content": "hi"}, "messages"),
    ],
)  # fmt: skip
def test_malformed_messages_name_the_field(messages, param):
    error = error_of(orjson.dumps({"model": "m", "messages": messages}))
    assert error.param == param, error.message
    assert param in error.message


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hi", "name": "alice", "vendor_key": {"x": 1}}],
        [{"role": "developer", "content": ""}],
        [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}],
          "name": "bob"}],
        [{"role": "user", "content": [{"type": "some_future_part", "payload": [1, 2]}]}],
        [{"role": "user", "content": []}],
        [ASSISTANT_CALL, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
        [{"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
         {"role": "function", "name": "f", "content": "42"}],
        [{"role": "assistant", "content": "calling", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}],
    ],
)  # fmt: skip
def test_lenient_messages_pass_unchanged(messages):
    chat = parse_chat_request(orjson.dumps({"model": "m", "messages": messages}))
    assert chat.messages == messages


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [TOOL, {"type": "function", "function": {"name": 3}}]}, "tools.[1].function.name"),
        ({"tools": [{"type": "function", "function": {"name": ""}}]}, "tools.[0].function.name"),
        ({"tools": [{"type": "function"}]}, "tools.[0].function"),
        ({"tools": [{"type": "function", "function": "f"}]}, "tools.[0].function"),
        ({"tools": [{"type": "retrieval"}]}, "tools.[0].type"),
        ({"tools": ["get_weather"]}, "tools.[0]"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
         "tools.[0].function.parameters"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": 1}, "tool_choice"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.function"),
        ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
        ({"tool_choice": {"type": "function", "function": {"name": ["f"]}}}, "tool_choice.function.name"),
        ({"stop": 3}, "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": ["a", None]}, "stop.[1]"),
        ({"stop": {"a": 1}}, "stop"),
        ({"stream": "true"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"stream_options": "include_usage"}, "stream_options"),
        ({"stream_options": [True]}, "stream_options"),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ({"n": 0}, "n"),
        ({"n": 1000000000}, "n"),
        ({"max_tokens": 1e19}, "max_tokens"),
        ({"max_completion_tokens": 2**40}, "max_completion_tokens"),
    ],
)  # fmt: skip
def test_malformed_structured_fields_name_the_field(fields, param):
    error = invalid(**fields)
    assert error.param == param, error.message


def test_shaped_fields_are_forwarded_as_written():
    tools = [TOOL, {"type": "custom", "custom": {"name": "grep", "format": {"type": "text"}}}]
    choice = {"type": "function", "function": {"name": "get_weather"}, "vendor": 1}
    chat = parse(model="m", messages=MESSAGES, tools=tools, tool_choice=choice, stop="END", stream=False,
                 stream_options={"include_usage": True, "future_option": 2})  # fmt: skip
    assert chat.params == {
        "tools": tools,
        "tool_choice": choice,
        "stop": "END",
        "stream_options": {"include_usage": True, "future_option": 2},
    }
    assert chat.stream is False and chat.extra_body == {}


@pytest.mark.parametrize("choice", ["none", "auto", "required", {"type": "function", "function": {"name": "f"}}])
def test_every_documented_tool_choice_is_accepted(choice):
    assert parse(model="m", messages=MESSAGES, tools=[TOOL], tool_choice=choice).params["tool_choice"] == choice


def test_nulls_mean_not_sent():
    chat = parse(
        model="m", messages=MESSAGES, stop=None, tools=None, tool_choice=None, stream=None, stream_options=None
    )
    assert chat.params == {} and chat.stream is False


def test_the_openapi_schema_describes_the_shapes():
    from api.schemas import ChatCompletionRequest

    schema = ChatCompletionRequest.model_json_schema()
    message = schema["$defs"]["Message"]
    assert message["properties"]["role"]["enum"] == ["system", "developer", "user", "assistant", "tool", "function"]
    assert message["additionalProperties"] is True
    assert schema["additionalProperties"] is True
