"""Property-based Messages bodies (POST /v1/messages) through the live gateway: never a 500, every error
Anthropic-shaped ({"type": "error", "error": {"type", "message"}}), also an error event inside a stream."""

import re

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fuzz.conftest import EXAMPLES, PROVIDER_STATUSES, TALLY, FuzzClient
from tests.fuzz.strategies import (
    CONTENT_TYPES,
    bodies,
    broken_copies,
    json_values,
    names,
    remove_or_set,
    request_bodies,
    words,
)
from tests.fuzz.test_openapi import load_schema, run

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES_EXAMPLES = EXAMPLES // 2  # two requests each: the body, then a broken copy of it
SCHEMA_EXAMPLES = EXAMPLES // 4  # for each of schemathesis' positive and negative modes
# Native Anthropic (capped at 50), translated by LiteLLM (an OpenAI-wire model and its alias), and refused ones.
MODELS = ["claude-3-5-sonnet-20241022", "gpt-4o-mini", "fast", "no-such-model", "disabled-model", ""]
FIELD_PATH = re.compile(r"^([\w.]+): ")

text_block = st.fixed_dictionaries({"type": st.just("text"), "text": words})
image_block = st.fixed_dictionaries({"type": st.just("image"), "source": st.fixed_dictionaries(
    {"type": st.just("base64"), "media_type": st.just("image/png"), "data": st.just("iVBORw0KGgo=")})})  # fmt: skip
tool_use_block = st.fixed_dictionaries({"type": st.just("tool_use"), "id": words, "name": names,
                                        "input": st.dictionaries(names, words, max_size=2)})  # fmt: skip
tool_result_block = st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": words},
                                          optional={"content": words | st.lists(text_block, max_size=2),
                                                    "is_error": st.booleans()})  # fmt: skip
other_block = st.fixed_dictionaries({"type": st.sampled_from(["thinking", "document", "future_kind"])},
                                    optional={"thinking": words, "signature": words})  # fmt: skip
block = text_block | text_block | image_block | tool_use_block | tool_result_block | other_block
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant"]), "content": words | st.lists(block, min_size=1, max_size=3)},
    optional={"vendor_key": json_values},
)
tool = st.fixed_dictionaries(
    {"name": names, "input_schema": st.just({"type": "object", "properties": {}})}, optional={"description": words}
)
VALID_FIELDS = {
    "system": words | st.lists(text_block, max_size=2),
    "stream": st.booleans(),
    "temperature": st.floats(0, 1),
    "top_p": st.floats(0, 1),
    "top_k": st.integers(0, 500),
    "stop_sequences": st.lists(words, max_size=3),
    "tools": st.lists(tool, max_size=2),
    "tool_choice": st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "none"])})
    | st.fixed_dictionaries({"type": st.just("tool"), "name": names}),
    "metadata": st.fixed_dictionaries({}, optional={"user_id": words}),
    "thinking": st.sampled_from([{"type": "disabled"}, {"type": "enabled", "budget_tokens": 1024}]),
    "service_tier": st.sampled_from(["auto", "standard_only"]),
}
valid_bodies = bodies(
    {
        "model": st.sampled_from(MODELS[:3]),
        "max_tokens": st.integers(1, 2**31 - 1),
        "messages": st.lists(message, min_size=1, max_size=3),
    },
    VALID_FIELDS,
)
PLACES = ["model", "max_tokens", "messages", *VALID_FIELDS, "unknown", "control"]


def break_a_message(draw: st.DrawFn, messages: list, bad: object) -> None:
    target = messages[draw(st.integers(0, len(messages) - 1))]
    if isinstance(target["content"], list) and draw(st.booleans()):
        target = target["content"][0]
    key = draw(st.sampled_from(["role", "content", "type", "text", "input", "tool_use_id", "source"]))
    remove_or_set(draw, target, key, bad)


messages_bodies = request_bodies(valid_bodies, PLACES, {"messages": break_a_message})


def assert_anthropic_error(error: object) -> None:
    assert isinstance(error, dict) and set(error) == {"type", "error"} and error["type"] == "error", error
    detail = error["error"]
    assert isinstance(detail, dict) and set(detail) == {"type", "message"}, error
    assert isinstance(detail["type"], str) and isinstance(detail["message"], str) and detail["message"], error


def check(response: httpx.Response) -> None:
    status = response.status_code
    assert status != 500, f"500 for this request: {response.request.content[:500]!r}: {response.text[:500]}"
    assert status < 500 or status in PROVIDER_STATUSES, f"unexpected {status}: {response.text[:500]}"
    if not response.is_success:
        assert response.headers.get("content-type") == "application/json", (status, response.text[:300])
        assert_anthropic_error(response.json())
    elif response.headers.get("content-type", "").startswith("text/event-stream"):
        for frame in response.text.split("\n\n"):
            if frame.startswith("event: error"):
                assert_anthropic_error(orjson.loads(frame.split("data:", 1)[1]))


def send(fuzz: FuzzClient, content: bytes, content_type: str | None) -> httpx.Response:
    headers = {"x-api-key": fuzz.api_key, **({} if content_type is None else {"Content-Type": content_type})}
    response = fuzz.http.post("/v1/messages", content=content, headers=headers)
    fuzz.sent += 1
    TALLY.requests += 1
    TALLY.statuses[response.status_code] += 1
    check(response)
    return response


def test_messages_shaped_bodies(fuzz: FuzzClient):
    answered: dict[str, int] = {"ok": 0, "field": 0}

    @settings(max_examples=MESSAGES_EXAMPLES)
    @given(body=messages_bodies, content_type=st.sampled_from(CONTENT_TYPES), breakage=st.data())
    def send_body(body, content_type, breakage):
        send(fuzz, breakage.draw(broken_copies(orjson.dumps(body))), content_type)
        response = send(fuzz, orjson.dumps(body), content_type)
        if response.is_success:
            answered["ok"] += 1
        elif response.status_code == 400 and (named := FIELD_PATH.match(response.json()["error"]["message"])):
            answered["field"] += 1
            top = named.group(1).split(".")[0]
            assert top in body or top in {"model", "max_tokens", "messages"}, (response.json(), body)

    send_body()
    assert fuzz.sent >= 2 * MESSAGES_EXAMPLES
    assert answered["ok"] > MESSAGES_EXAMPLES // 100, answered  # some valid requests reached the provider
    assert answered["field"] > MESSAGES_EXAMPLES // 10, answered


def anthropic_shaped_errors(ctx, response, case) -> None:
    if response.status_code >= 400:
        assert response.headers.get("content-type") == ["application/json"], response.headers
        assert_anthropic_error(response.json())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_messages_against_its_openapi_schema(fuzz: FuzzClient, mode):
    operation = load_schema(fuzz)["/v1/messages"]["POST"]
    statuses = run(fuzz, operation, mode, SCHEMA_EXAMPLES, headers={"x-api-key": fuzz.api_key},
                   error_shape=anthropic_shaped_errors)  # fmt: skip
    assert fuzz.sent >= 1 and 500 not in statuses, statuses
