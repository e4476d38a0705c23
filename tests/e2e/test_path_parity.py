"""The same fault, error or answer looks the same to a caller on the direct relay and on LiteLLM.

`make test` runs tests/e2e twice (relay, then LLMPROXY_DIRECT_RELAY=0); the Claude model takes the translated path
(LiteLLM's Anthropic configuration: api/translated.py) in the first run and litellm.acompletion in the second.
"""

import httpx
import orjson
import pytest

from tests.e2e.test_faults import free_port

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi"}]
LITELLM_WORDS = ("litellm", "Handle with", "drop_params", "allowed_openai_params", "Exception -", "b'{", 'b"{')
OPENAI_USAGE = {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                "completion_tokens_details"}  # fmt: skip


def post(gateway_url: str, api_key: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway_url}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {api_key}"}, timeout=30)  # fmt: skip


def error_of(response: httpx.Response) -> dict:
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: {")]
        return orjson.loads(events[-1])["error"]
    return response.json()["error"]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-3-5-sonnet-20241022"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("fault", "options", "status", "code", "says"), [
    ("invalid_json", {}, 502, "provider_error", "not valid JSON"),
    ("cut", {"after": 1}, 502, "provider_error", "connection closed before the answer was complete"),
    ("status", {"status": 500}, 502, "provider_error", "failed: fake provider error 500"),
    ("status", {"status": 400}, 400, "provider_rejected_request", "fake provider error 400"),
])  # fmt: skip
def test_a_fault_gets_the_same_code_and_words_on_every_path(gateway_url, api_key, policy, fake_provider, model,
                                                            stream, fault, options, status, code, says):  # fmt: skip
    if fault == "invalid_json" and stream and model.startswith("claude"):
        pytest.skip("LiteLLM skips an Anthropic SSE line that is not JSON; there is no relay path to compare")
    fake_provider.fail_next(fault, **options)
    response = post(gateway_url, api_key, {"model": model, "messages": HELLO, "stream": stream})
    error = error_of(response)
    assert error["code"] == code, error
    assert says in error["message"]
    assert not any(word in error["message"] for word in LITELLM_WORDS), error["message"]
    if response.status_code != 200:  # a stream cut after its first chunk keeps its 200 and ends with the event
        assert response.status_code == status


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-3-5-sonnet-20241022"])
def test_a_refused_connection_is_unreachable_on_every_path(gateway_url, api_key, policy, model):
    from routing.models import Deployment

    base = f"http://127.0.0.1:{free_port()}" + ("/v1" if model.startswith("gpt") else "")
    Deployment.objects.filter(model__name=model).update(api_base=base)
    from routing.versioning import bump_policy_version

    bump_policy_version()
    error = error_of(post(gateway_url, api_key, {"model": model, "messages": HELLO}))
    assert error["code"] == "provider_unreachable"


def test_an_unsupported_parameter_is_explained_without_litellm_advice(gateway_url, api_key, policy):
    response = post(gateway_url, api_key, {"model": "claude-3-5-sonnet-20241022", "messages": HELLO,
                                           "logit_bias": {"50256": -100}})  # fmt: skip
    assert response.status_code == 400
    error = response.json()["error"]
    assert "logit_bias" in error["message"]
    assert not any(word in error["message"] for word in LITELLM_WORDS), error["message"]


def assert_openai_fields(payload: dict) -> None:
    for choice in payload.get("choices", []):
        assert "provider_specific_fields" not in choice
        for part in ("message", "delta"):
            assert not {"provider_specific_fields", "thinking_blocks"} & set(choice.get(part, {}))
    if payload.get("usage"):
        assert set(payload["usage"]) <= OPENAI_USAGE, payload["usage"]
        assert "cost" not in payload["usage"]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-3-5-sonnet-20241022"])
def test_answers_carry_only_openai_fields(gateway_url, api_key, policy, model):
    answer = post(gateway_url, api_key, {"model": model, "messages": HELLO})
    assert answer.status_code == 200
    assert_openai_fields(answer.json())
    streamed = post(gateway_url, api_key, {"model": model, "messages": HELLO, "stream": True,
                                           "stream_options": {"include_usage": True}})  # fmt: skip
    chunks = [orjson.loads(line[6:]) for line in streamed.text.split("\n\n") if line.startswith("data: {")]
    assert chunks and any(chunk.get("usage") for chunk in chunks)
    for chunk in chunks:
        assert_openai_fields(chunk)
