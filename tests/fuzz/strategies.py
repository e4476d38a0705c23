"""Hypothesis strategies for bad (and some good) chat requests: shapes, wrong types, unicode, nulls, extra fields.

`bodies`, `one_wrong` and `request_bodies` build the same kinds of bodies for the other endpoints' tests.
"""

from collections.abc import Callable, Mapping, Sequence

import orjson
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from api.schemas import CONTROL_FIELDS

MODELS = ["gpt-4o-mini", "fast", "capped", "no-such-model", "disabled-model", "", "gpt-4o-mini ", "GPT-4O-MINI"]
CONTENT_TYPES = [
    "application/json", "application/json; charset=utf-8", None, "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz", "application/xml", "", "application/octet-stream", "*/*; q=0.1",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
words = st.text(max_size=40)  # any unicode but lone surrogates (which JSON cannot carry as UTF-8)
names = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)


def bodies(required: dict[str, SearchStrategy], optional: dict[str, SearchStrategy]) -> SearchStrategy[dict]:
    """Valid bodies: every required field and any of the optional ones."""
    return st.builds(
        lambda required, optional: {**required, **optional},
        st.fixed_dictionaries(required),
        st.fixed_dictionaries({}, optional=optional),
    )


ItemBreaker = Callable[[st.DrawFn, list, object], None]  # breaks one item of a list field with the bad value


def remove_or_set(draw: st.DrawFn, target: dict, key: str, bad: object) -> None:
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = bad


@st.composite
def one_wrong(
    draw: st.DrawFn, valid: SearchStrategy[dict], places: Sequence[str], inside: Mapping[str, ItemBreaker]
) -> dict:
    """A valid body with one thing wrong: a field replaced, removed or added (an unknown or a control field), or,
    for a non-empty list field named in `inside`, sometimes one of its items broken instead."""
    body = draw(valid)
    place = draw(st.sampled_from(places))
    bad = draw(json_values)
    if place == "control":
        body[draw(st.sampled_from(sorted(CONTROL_FIELDS)))] = bad
    elif place == "unknown":
        body[draw(st.text(max_size=12))] = bad
    elif place in inside and isinstance(body.get(place), list) and body[place] and draw(st.booleans()):
        inside[place](draw, body[place], bad)
    elif draw(st.booleans()) and place in body:
        del body[place]
    else:
        body[place] = bad
    return body


def request_bodies(
    valid: SearchStrategy[dict], places: Sequence[str], inside: Mapping[str, ItemBreaker] | None = None
) -> SearchStrategy[dict]:
    """Valid bodies, bodies with one thing wrong (twice as often) and bodies of known fields with any values."""
    inside = inside or {}
    return (
        valid
        | one_wrong(valid, places, inside)
        | one_wrong(valid, places, inside)
        | st.dictionaries(st.sampled_from(places), json_values)
    )


# Valid values, field by field.
text_part = st.fixed_dictionaries({"type": st.just("text"), "text": words})
other_part = st.fixed_dictionaries(
    {"type": st.sampled_from(["image_url", "input_audio", "file", "refusal", "future_kind"])},
    optional={"image_url": st.fixed_dictionaries({"url": words}), "detail": words},
)
content = words | st.lists(text_part | other_part, max_size=3)
function_call = st.fixed_dictionaries({"name": names, "arguments": words})
tool_call = st.fixed_dictionaries({"id": words, "type": st.just("function"), "function": function_call})
plain_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant"]), "content": content},
    optional={"name": words, "vendor_key": json_values},
)
message = (
    plain_message
    | plain_message
    | st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": words, "content": content})
    | st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": st.none(), "tool_calls": st.lists(tool_call, min_size=1, max_size=2)}
    )
    | st.fixed_dictionaries({"role": st.just("function"), "name": names, "content": words})
)
function = st.fixed_dictionaries(
    {"name": names}, optional={"description": words, "parameters": st.just({"type": "object"}), "strict": st.booleans()}
)
tool = st.fixed_dictionaries({"type": st.just("function"), "function": function})
VALID_FIELDS = {
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "frequency_penalty": st.floats(-2, 2),
    "presence_penalty": st.floats(-2, 2),
    "max_tokens": st.integers(1, 2**31 - 1),
    "max_completion_tokens": st.integers(1, 200),
    "n": st.integers(1, 4),
    "stop": words | st.lists(words, max_size=4) | st.none(),
    "tools": st.lists(tool, max_size=3),
    "tool_choice": st.sampled_from(["none", "auto", "required"])
    | st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": names})}),
    "user": words,
    "seed": st.integers(-(2**63), 2**63 - 1),
    "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
    "parallel_tool_calls": st.booleans(),
    "metadata": st.dictionaries(names, words, max_size=2),
    "top_k": st.integers(0, 100),
}
valid_bodies = bodies(
    {"model": st.sampled_from(MODELS[:3]), "messages": st.lists(message, min_size=1, max_size=3)}, VALID_FIELDS
)
# One thing wrong: a field replaced, removed or added; a message, a part or a tool broken.
PLACES = ["model", "messages", *VALID_FIELDS, "unknown", "control"]


def break_a_message(draw: st.DrawFn, messages: list, bad: object) -> None:
    target = messages[draw(st.integers(0, len(messages) - 1))]
    key = draw(st.sampled_from(["role", "content", "tool_call_id", "tool_calls", "function_call", "name"]))
    if isinstance(target.get("content"), list) and target["content"] and draw(st.booleans()):
        target = target["content"][0]
        key = draw(st.sampled_from(["type", "text"]))
    remove_or_set(draw, target, key, bad)


def break_a_tool(draw: st.DrawFn, tools: list, bad: object) -> None:
    target = tools[0]["function"] if draw(st.booleans()) else tools[0]
    target[draw(st.sampled_from(["type", "function", "name", "parameters"]))] = bad


chat_bodies = request_bodies(valid_bodies, PLACES, {"messages": break_a_message, "tools": break_a_tool})


@st.composite
def broken_copies(draw: st.DrawFn, body: bytes) -> bytes:
    """A JSON body broken: truncated, wrapped or extended deep, with garbage inside, or grown huge."""
    how = draw(st.sampled_from(["truncated", "truncated", "deep", "deep field", "garbage", "garbage", "huge"]))
    if how == "truncated":
        return body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    if how == "deep":
        depth = draw(st.sampled_from([63, 64, 65, 200, 255, 1023, 1025, 5000, 100_000]))
        return b"[" * depth + body + b"]" * depth
    if how == "deep field" and body.startswith(b"{"):
        depth = draw(st.sampled_from([2, 30, 63, 64, 65, 100, 254, 255, 256, 500, 1023, 1024, 1025, 3000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]))
        deep = opener * depth + b"1" + closer * depth
        return b'{"deep": ' + deep + (b", " + body[1:] if len(body) > 2 else b"}")
    if how == "huge" and body.startswith(b"{"):
        size = draw(st.sampled_from([10_000, 100_000, 1_000_000]))
        return body[:-1] + b', "padding": "' + b"x" * size + b'"}' if len(body) > 2 else body
    at = draw(st.integers(0, len(body)))
    return body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at:]


raw_bodies = (
    json_values.map(orjson.dumps)
    | st.binary(max_size=200)
    | st.text(max_size=100).map(str.encode)
    | st.sampled_from([b"", b" ", b"null", b"{}", b"[]", b'{"model": "gpt-4o-mini"}', b"\xef\xbb\xbf{}", b"{" * 10])
)


# Embeddings (POST /v1/embeddings): the same idea, for its own fields.
EMBEDDING_MODELS = ["embed-small", "embed-alias", "no-such-model", "gpt-4o-mini", ""]
tokens = st.lists(st.integers(0, 100_000), min_size=1, max_size=5)
texts = words.filter(bool)
embedding_input = texts | st.lists(texts, min_size=1, max_size=4) | tokens | st.lists(tokens, min_size=1, max_size=3)
EMBEDDING_FIELDS = {
    "encoding_format": st.sampled_from(["float", "base64"]),
    "dimensions": st.integers(1, 1536),
    "user": words,
}
valid_embedding_bodies = bodies(
    {"model": st.sampled_from(EMBEDDING_MODELS[:2]), "input": embedding_input}, EMBEDDING_FIELDS
)
EMBEDDING_PLACES = ["model", "input", *EMBEDDING_FIELDS, "unknown", "control"]


def break_an_input(draw: st.DrawFn, inputs: list, bad: object) -> None:
    inputs[draw(st.integers(0, len(inputs) - 1))] = bad


embedding_bodies = request_bodies(valid_embedding_bodies, EMBEDDING_PLACES, {"input": break_an_input})
