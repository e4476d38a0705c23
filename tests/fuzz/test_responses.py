"""Property-based Responses API bodies through the live gateway: never a 500, every error OpenAI-shaped.

Both the relayed models and the Claude model (LiteLLM's bridge) are drawn; a second test runs schemathesis against
the operation's OpenAPI schema.
"""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fuzz.conftest import EXAMPLES, FuzzClient
from tests.fuzz.strategies import CONTENT_TYPES, bodies, broken_copies, names, remove_or_set, request_bodies, words
from tests.fuzz.test_openapi import OTHER_EXAMPLES, load_schema, run

pytestmark = pytest.mark.django_db(transaction=True)

RESPONSES_EXAMPLES = EXAMPLES // 2  # two requests each: the body, then a broken copy of it
MODELS = ["gpt-4o-mini", "fast", "claude-3-5-sonnet-20241022", "capped", "no-such-model", ""]

text_part = st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text"]), "text": words})
other_part = st.fixed_dictionaries({"type": st.sampled_from(["input_image", "input_file", "future_part"])},
                                   optional={"image_url": words, "file_id": words})  # fmt: skip
message_item = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer"]),
     "content": words | st.lists(text_part | other_part, max_size=3)},
    optional={"type": st.just("message")},
)  # fmt: skip
call_item = st.fixed_dictionaries({"type": st.just("function_call"), "call_id": words, "name": names,
                                   "arguments": words})  # fmt: skip
output_item = st.fixed_dictionaries({"type": st.just("function_call_output"), "call_id": words, "output": words})
items = st.lists(message_item | message_item | call_item | output_item, max_size=4)
function_tool = st.fixed_dictionaries({"type": st.just("function"), "name": names},
                                      optional={"parameters": st.just({"type": "object"}), "strict": st.booleans(),
                                                "description": words})  # fmt: skip
FIELDS = {
    "stream": st.booleans(),
    "max_output_tokens": st.integers(16, 4000),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "tools": st.lists(function_tool, max_size=2),
    "tool_choice": st.sampled_from(["none", "auto", "required"]),
    "instructions": words,
    "user": words,
    "metadata": st.dictionaries(names, words, max_size=3),
    "text": st.just({"format": {"type": "text"}}),
    "reasoning": st.just({"effort": "low"}),
    "store": st.booleans(),
    "parallel_tool_calls": st.booleans(),
    "include": st.just([]),
}
valid_bodies = bodies({"model": st.sampled_from(MODELS[:3]), "input": words | items}, FIELDS)
PLACES = ["model", "input", *FIELDS, "previous_response_id", "conversation", "background", "unknown", "control"]


def break_an_item(draw: st.DrawFn, items: list, bad: object) -> None:
    target = items[draw(st.integers(0, len(items) - 1))]
    key = draw(st.sampled_from(["role", "content", "type", "call_id", "name", "arguments", "output"]))
    remove_or_set(draw, target, key, bad)


responses_bodies = request_bodies(valid_bodies, PLACES, {"input": break_an_item})


def test_responses_shaped_bodies(fuzz: FuzzClient):
    answered: dict[str, int] = {"ok": 0, "param": 0}

    def send_body(content: bytes, content_type: str | None):
        headers = {**fuzz.auth, **({} if content_type is None else {"Content-Type": content_type})}
        return fuzz.request("POST", "/v1/responses", content=content, headers=headers)

    @settings(max_examples=RESPONSES_EXAMPLES)
    @given(body=responses_bodies, content_type=st.sampled_from(CONTENT_TYPES), breakage=st.data())
    def send(body, content_type, breakage):
        send_body(breakage.draw(broken_copies(orjson.dumps(body))), content_type)
        response = send_body(orjson.dumps(body), content_type)
        if response.is_success:
            answered["ok"] += 1
            streamed = response.headers["content-type"].startswith("text/event-stream")
            assert b"event: response." in response.content if streamed else response.json()["object"] == "response"
        elif response.status_code == 400 and response.json()["error"]["param"]:
            answered["param"] += 1
            top = response.json()["error"]["param"].split(".")[0]
            assert top in body or top in {"model", "input"}, (response.json(), body)

    send()
    assert fuzz.sent >= 2 * RESPONSES_EXAMPLES
    assert answered["ok"] > RESPONSES_EXAMPLES // 100, answered
    assert answered["param"] > RESPONSES_EXAMPLES // 10, answered


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_responses_against_its_schema(fuzz: FuzzClient, mode):
    statuses = run(fuzz, load_schema(fuzz)["/v1/responses"]["POST"], mode, OTHER_EXAMPLES)
    assert fuzz.sent >= 1 and 500 not in statuses, statuses
