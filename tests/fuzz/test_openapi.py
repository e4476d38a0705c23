"""Schemathesis against the gateway's own OpenAPI schema (/openapi.json), served by the live gateway."""

from collections.abc import Callable

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.fuzz.conftest import EXAMPLES, TALLY, FuzzClient

pytestmark = pytest.mark.django_db(transaction=True)

CHAT_EXAMPLES = 3 * EXAMPLES // 2  # for each of the positive and the negative mode
OTHER_EXAMPLES = EXAMPLES // 4


def openai_shaped_errors(ctx, response, case) -> None:
    """Every error is {"error": {"message", "type", "param", "code"}}."""
    if response.status_code < 400:
        return
    assert response.headers.get("content-type") == ["application/json"], response.headers
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and isinstance(error["type"], str), error


def load_schema(fuzz: FuzzClient):
    raw = httpx.get(f"{fuzz.url}/openapi.json").json()
    assert "/v1/chat/completions" in raw["paths"]
    return schemathesis.openapi.from_dict(raw)


def run(fuzz: FuzzClient, operation, mode: GenerationMode, examples: int, *, headers: dict[str, str] | None = None,
        error_shape: Callable = openai_shaped_errors) -> dict[int, int]:  # fmt: skip
    """Sends the operation's generated cases (with `headers`, default the OpenAI Bearer key), checking every answer
    for a 500 and every error for its `error_shape`; the count of each status."""
    session = requests.Session()
    statuses: dict[int, int] = {}

    @settings(max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        response = case.call(base_url=fuzz.url, session=session, headers=headers or fuzz.auth)
        fuzz.sent += 1
        TALLY.requests += 1
        TALLY.statuses[response.status_code] += 1
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error, error_shape])

    send()
    session.close()
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_chat_completions_against_its_schema(fuzz: FuzzClient, mode):
    operation = load_schema(fuzz)["/v1/chat/completions"]["POST"]
    statuses = run(fuzz, operation, mode, CHAT_EXAMPLES)
    assert fuzz.sent >= CHAT_EXAMPLES, statuses
    assert 400 in statuses, statuses
    if mode == GenerationMode.POSITIVE:
        assert statuses.get(200, 0) + statuses.get(400, 0) >= CHAT_EXAMPLES * 0.9, statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_embeddings_against_its_schema(fuzz: FuzzClient, mode):
    statuses = run(fuzz, load_schema(fuzz)["/v1/embeddings"]["POST"], mode, OTHER_EXAMPLES)
    assert fuzz.sent >= 1 and 500 not in statuses, statuses


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        ("/v1/models", GenerationMode.POSITIVE),
        ("/v1/models", GenerationMode.NEGATIVE),
        ("/healthz", GenerationMode.POSITIVE),
    ],
)
def test_other_operations_against_the_schema(fuzz: FuzzClient, path, mode):
    statuses = run(fuzz, load_schema(fuzz)[path]["GET"], mode, OTHER_EXAMPLES)
    assert fuzz.sent >= 1 and set(statuses) <= {200, 401}, statuses  # few distinct cases: hypothesis stops early
