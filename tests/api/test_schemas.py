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
