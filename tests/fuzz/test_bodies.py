"""Property-based bodies and headers through the live gateway: never a 500, every error OpenAI-shaped."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import EXAMPLES, FuzzClient
from tests.fuzz.strategies import CONTENT_TYPES, broken_copies, chat_bodies, raw_bodies

pytestmark = pytest.mark.django_db(transaction=True)

CHAT_EXAMPLES = 2 * EXAMPLES  # two requests each: the body, then a broken copy of it
RAW_EXAMPLES = 3 * EXAMPLES // 2
HEADER_EXAMPLES = EXAMPLES


def with_content_type(content_type: str | None) -> dict[str, str]:
    return {} if content_type is None else {"Content-Type": content_type}


def test_chat_shaped_bodies(fuzz: FuzzClient):
    answered: dict[str, int] = {"ok": 0, "param": 0}

    @settings(max_examples=CHAT_EXAMPLES)
    @given(body=chat_bodies, content_type=st.sampled_from(CONTENT_TYPES), breakage=st.data())
    def send(body, content_type, breakage):
        broken = breakage.draw(broken_copies(orjson.dumps(body)))
        fuzz.chat(broken, with_content_type(content_type))
        response = fuzz.chat(orjson.dumps(body), with_content_type(content_type))
        if response.is_success:
            answered["ok"] += 1
        elif response.status_code == 400 and response.json()["error"]["param"]:
            param = response.json()["error"]["param"]
            answered["param"] += 1
            top = param.split(".")[0]
            assert top in body or top in {"model", "messages"}, (param, body)  # a field sent, or a required one

    send()
    assert fuzz.sent >= 2 * CHAT_EXAMPLES
    assert answered["ok"] > CHAT_EXAMPLES // 100, answered  # some valid requests reached the provider
    assert answered["param"] > CHAT_EXAMPLES // 10, answered


def test_raw_bodies(fuzz: FuzzClient):
    @settings(max_examples=RAW_EXAMPLES)
    @given(body=raw_bodies, content_type=st.sampled_from(CONTENT_TYPES))
    def send(body, content_type):
        fuzz.chat(body, with_content_type(content_type))

    send()
    assert fuzz.sent >= RAW_EXAMPLES


header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9\-]{0,30}", fullmatch=True)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200).map(str.strip)


def test_headers(fuzz: FuzzClient):
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})

    @settings(max_examples=HEADER_EXAMPLES)
    @given(
        extra=st.dictionaries(header_names, header_values, max_size=6),
        padding=st.sampled_from([0, 0, 0, 100, 16_000, 16_500, 40_000]),
        authorization=st.sampled_from(["key", "key", "none", "basic", "garbage", "long"]),
        path=st.sampled_from(["/v1/chat/completions", "/v1/chat/completions", "/v1/models", "/healthz"]),
    )
    def send(extra, padding, authorization, path):
        headers = {name: value for name, value in extra.items() if name.lower() not in {"host", "content-length",
                   "transfer-encoding", "connection", "expect", "upgrade", "te", "trailer"}}  # fmt: skip
        if padding:
            headers["X-Padding"] = "p" * padding
        auth = {"key": f"Bearer {fuzz.api_key}", "basic": "Basic dXNlcjpwYXNz", "garbage": "Bearer ☃".encode(),
                "long": "Bearer llmp_" + "A" * 5000}.get(authorization)  # fmt: skip
        if auth is not None:
            headers["Authorization"] = auth
        method = "POST" if path.endswith("completions") else "GET"
        response = fuzz.request(method, path, headers=headers, content=body if method == "POST" else None)
        if padding >= 17_000:
            assert response.status_code == 431

    send()
    assert fuzz.sent >= HEADER_EXAMPLES
