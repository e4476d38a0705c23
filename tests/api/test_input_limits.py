"""Request limits: JSON depth, number of messages, body size, header size, empty and oddly typed bodies."""

import httpx
import orjson
import pytest

from api.errors import GatewayError
from api.schemas import parse_chat_request

MESSAGES = [{"role": "user", "content": "hi"}]


def error_of(body: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        parse_chat_request(body)
    assert caught.value.status == 400
    return caught.value


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    """`depth` levels of arrays around `leaf`, as raw JSON (built as text: Python's own encoder would recurse)."""
    return b"[" * depth + leaf + b"]" * depth


def body_with(field: bytes, value: bytes) -> bytes:
    return b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "' + field + b'": ' + value + b"}"


# JSON nesting depth.


@pytest.mark.parametrize("depth", [70, 300, 1000, 1100, 5000, 100_000])
def test_deep_nesting_is_a_400_naming_the_field(depth):
    error = error_of(body_with(b"vendor_option", nested(depth)))
    assert error.code == "json_too_deep"
    assert error.param == "vendor_option.[0].[0].[0]"
    assert "64" in error.message


@pytest.mark.parametrize("depth", [70, 5000])
def test_deep_nesting_inside_a_message_names_the_message(depth):
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi", "x": ' + nested(depth) + b"}]}"
    error = error_of(body)
    assert (error.code, error.param) == ("json_too_deep", "messages.[0].x.[0]")


def test_deep_objects_are_named_by_their_keys():
    body = body_with(b"response_format", b'{"a": ' * 3000 + b"1" + b"}" * 3000)
    assert error_of(body).param == "response_format.a.a.a"


def test_depth_counts_objects_and_arrays_alike_and_stops_at_the_limit(settings):
    settings.LLMPROXY_MAX_JSON_DEPTH = 5
    # the body itself is level 1: {"x": [[[1]]]} is 4 levels deep, {"x": [[[[1]]]]} 5, {"x": [[[[[1]]]]]} 6
    assert parse_chat_request(body_with(b"x", nested(3))).extra_body == {"x": [[[1]]]}
    with pytest.raises(GatewayError):  # messages: [ { ... } ] already uses 3 levels
        parse_chat_request(b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "t", "a": [[1]]}]}]}')
    parse_chat_request(b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "t", "a": 1}]}]}')
    assert error_of(body_with(b"x", nested(5))).param == "x.[0].[0].[0]"
    assert error_of(body_with(b"x", nested(2000))).param == "x.[0].[0].[0]"


def test_brackets_inside_strings_do_not_count():
    text = orjson.dumps("[" * 5000 + "{" * 5000)
    chat = parse_chat_request(b'{"model": "m", "messages": [{"role": "user", "content": ' + text + b"}]}")
    assert chat.messages[0]["content"].startswith("[[[")


def test_a_too_deep_body_after_a_long_string_is_still_named():
    body = b'{"model": "m", "pad": "' + b'\\"[' * 1000 + b'", "messages": ' + nested(3000) + b"}"
    assert error_of(body).param == "messages.[0].[0].[0]"


# Number of messages.


def test_too_many_messages_is_a_400_naming_messages(settings):
    settings.LLMPROXY_MAX_MESSAGES = 10
    assert len(parse_chat_request(orjson.dumps({"model": "m", "messages": MESSAGES * 10})).messages) == 10
    error = error_of(orjson.dumps({"model": "m", "messages": MESSAGES * 11}))
    assert (error.param, error.code) == ("messages", "array_above_max_length")
    assert "10" in error.message and "11" in error.message


def test_the_default_message_limit_is_openais():
    error = error_of(orjson.dumps({"model": "m", "messages": MESSAGES * 2049}))
    assert error.param == "messages"
    assert len(parse_chat_request(orjson.dumps({"model": "m", "messages": MESSAGES * 2048})).messages) == 2048


# Empty and non-JSON bodies.


@pytest.mark.parametrize("body", [b"", b"   \n", b"\xff\xfe", b'{"model": "m"', b"null", b'"text"', b"1e999"])
def test_empty_or_non_json_bodies_are_invalid_json(body):
    assert error_of(body).code == "invalid_json"


# Through the live server: header size, body size, content types.

live = pytest.mark.django_db(transaction=True)


def post(url: str, key: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    return httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=60, **kwargs)


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    return error


@live
def test_oversized_headers_are_a_431(gateway_url, api_key, policy):
    response = post(gateway_url, api_key, json={"model": "gpt-4o-mini", "messages": MESSAGES},
                    headers={"X-Padding": "p" * 17_000})  # fmt: skip
    error = assert_openai_error(response, 431, "request_headers_too_large")
    assert "16384" in error["message"]
    many = {f"X-Pad-{index}": "p" * 100 for index in range(200)}
    assert_openai_error(httpx.get(f"{gateway_url}/healthz", headers=many), 431, "request_headers_too_large")


@live
def test_the_header_limit_is_configurable(gateway_url, api_key, policy, settings):
    padding = {"X-Padding": "p" * 3000}
    assert post(gateway_url, api_key, json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers=padding).is_success
    settings.LLMPROXY_MAX_HEADER_BYTES = 2000
    response = post(gateway_url, api_key, json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers=padding)
    assert "2000" in assert_openai_error(response, 431, "request_headers_too_large")["message"]


@live
def test_a_body_over_the_limit_is_a_413(gateway_url, api_key, policy):
    huge = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"x" * (10 * 1024 * 1024) + b'"}]}'
    response = post(gateway_url, api_key, content=huge, headers={"Content-Type": "application/json"})
    assert "10485760" in assert_openai_error(response, 413, "request_too_large")["message"]


@live
def test_a_chunked_body_over_the_limit_is_a_413(gateway_url, api_key, policy, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    chunks = [b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "', *[b"x" * 100] * 20, b'"}]}']
    response = post(gateway_url, api_key, content=iter(chunks))
    assert_openai_error(response, 413, "request_too_large")
    small = [b'{"model": "gpt-4o-mini", ', b'"messages": [{"role": "user", "content": "hi"}]}']
    assert post(gateway_url, api_key, content=iter(small)).status_code == 200


@live
def test_the_body_limit_is_configurable(gateway_url, api_key, policy, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 1000}]}
    assert_openai_error(post(gateway_url, api_key, json=body), 413, "request_too_large")
    assert post(gateway_url, api_key, json={"model": "gpt-4o-mini", "messages": MESSAGES}).status_code == 200


@live
def test_an_empty_body_is_invalid_json(gateway_url, api_key, policy):
    assert_openai_error(post(gateway_url, api_key, content=b""), 400, "invalid_json")


@live
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_a_json_body_is_read_whatever_the_content_type(gateway_url, api_key, policy, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": MESSAGES})
    response = post(gateway_url, api_key, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello! You said: hi"


@live
def test_a_deep_body_through_the_server_is_a_400(gateway_url, api_key, policy, fake_provider):
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "x": ' + nested(200) + b"}"
    assert (
        assert_openai_error(post(gateway_url, api_key, content=body), 400, "json_too_deep")["param"] == "x.[0].[0].[0]"
    )
    assert fake_provider.requests == []


@live
def test_requests_refused_for_their_size_are_logged_as_rejected(gateway_url, api_key, policy, settings):
    from tests.support.request_log import logged_rows

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 1000}]}
    assert post(gateway_url, api_key, json=body).status_code == 413
    chunks = [b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "', *[b"x" * 100] * 20, b'"}]}']
    assert post(gateway_url, api_key, content=iter(chunks)).status_code == 413
    padding = {"X-Padding": "p" * 17_000}
    assert (
        post(gateway_url, api_key, json={"model": "gpt-4o-mini", "messages": MESSAGES}, headers=padding).status_code
        == 431
    )
    rows = [(row.status, row.end_reason, row.error_code) for row in logged_rows()]
    assert rows == [
        (413, "rejected", "request_too_large"),
        (413, "rejected", "request_too_large"),
        (431, "rejected", "request_headers_too_large"),
    ]
