"""Failover between a model's deployments (issue 10): the official SDKs against the live gateway, three fake provider
processes recording what each received. A deployment failing with a 429, a 5xx, a timeout or a refused connection
before the first byte is left for the next one, on both paths (the direct relay and LiteLLM, OpenAI's wire and
Anthropic's); a 400, or a failure after the first byte, is not."""

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import ATTEMPTS, ask, deployment, make_model, received
from tests.support.request_log import rows_once_logged

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["relay", "litellm", "anthropic"]
FAULTS = {
    "429": {"kind": "status", "status": 429},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "503": {"kind": "status", "status": 503},
    "timeout": {"kind": "slow", "delay": 5},  # the failing deployment's timeout_seconds is 1
    "refused": None,  # the failing deployment's api_base is a closed port
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("path", PATHS)
def test_a_failing_deployment_is_left_for_the_next_before_the_first_byte(
    failover_client, fake_providers, path, fault, stream
):
    down, up, _ = fake_providers
    timeout = {"timeout_seconds": 1} if fault == "timeout" else {}
    failing = deployment(None if fault == "refused" else down, path, name="first", **timeout)
    make_model("pool", failing, deployment(up, path, name="second", priority=1))
    if FAULTS[fault] is not None:
        down.fail_always(**FAULTS[fault])

    assert ask(failover_client, "pool", stream=stream) == ("Hello! You said: hi", 2)
    assert received(down, up) == [0 if fault == "refused" else 1, 1]
    [row] = rows_once_logged(1)
    assert (row.status, row.deployment, row.attempts, row.fallback_model) == (200, "second", 2, "")


def test_an_openai_deployment_fails_over_to_an_anthropic_one(failover_client, fake_providers):
    down, up, _ = fake_providers
    make_model("mixed", deployment(down, "relay"), deployment(up, "anthropic", priority=1))
    down.fail_always("status", status=503)
    assert ask(failover_client, "mixed", stream=True) == ("Hello! You said: hi", 2)
    assert [request.path for request in up.requests] == ["/v1/messages"]


def test_every_deployment_failing_answers_the_last_failure_with_the_attempts_made(failover_client, fake_providers):
    first, second, third = fake_providers
    make_model("doomed", *(deployment(provider, priority=rank) for rank, provider in enumerate(fake_providers)))
    first.fail_always("status", status=500)
    second.fail_always("status", status=502)
    third.fail_always("status", status=503)
    with pytest.raises(openai.InternalServerError) as failed:
        ask(failover_client, "doomed")
    assert failed.value.status_code == 503  # the last deployment's failure
    assert failed.value.response.headers[ATTEMPTS] == "3"
    assert received(first, second, third) == [1, 1, 1]
    [row] = rows_once_logged(1)
    assert (row.status, row.attempts) == (503, 3)


@pytest.mark.parametrize("path", PATHS)
def test_a_provider_400_is_the_callers_problem_and_no_other_deployment_is_tried(failover_client, fake_providers, path):
    down, up, _ = fake_providers
    make_model("pool", deployment(down, path), deployment(up, path, priority=1))
    down.fail_always("status", status=400)
    with pytest.raises(openai.BadRequestError) as refused:
        ask(failover_client, "pool")
    assert refused.value.response.headers[ATTEMPTS] == "1"
    assert received(down, up) == [1, 0]


def sse_events(response: httpx.Response) -> list[str]:
    return [block.removeprefix("data: ") for block in response.text.split("\n\n") if block.startswith("data: ")]


@pytest.mark.parametrize("fault", ["cut", "stream_error"])
@pytest.mark.parametrize("path", PATHS)
def test_no_failover_once_the_first_byte_reached_the_client(gateway_url, failover_key, fake_providers, path, fault):
    down, up, _ = fake_providers
    make_model("pool", deployment(down, path), deployment(up, path, priority=1))
    down.fail_always(fault, after=2)
    body = {"model": "pool", "messages": [{"role": "user", "content": "REPEAT 20"}], "stream": True}
    response = httpx.post(f"{gateway_url}/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {failover_key}"})  # fmt: skip
    assert (response.status_code, response.headers[ATTEMPTS]) == (200, "1")
    events = sse_events(response)
    assert "[DONE]" not in events
    assert sum('"error"' in event for event in events) == 1 and '"error"' in events[-1]
    assert received(down, up) == [1, 0]


def test_the_sdk_sees_a_stream_cut_after_the_first_byte_as_an_error(failover_client, fake_providers):
    down, up, _ = fake_providers
    make_model("pool", deployment(down), deployment(up, priority=1))
    down.fail_always("cut", after=2)
    with pytest.raises(openai.APIError):
        ask(failover_client, "pool", text="REPEAT 20", stream=True)
    assert received(down, up) == [1, 0]


# The other endpoints fail over too.


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_messages_fail_over_to_the_next_deployment(gateway_url, failover_key, fake_providers, stream):
    down, up, _ = fake_providers
    make_model("claude-pool", deployment(down, "anthropic", name="east"),
               deployment(up, "anthropic", name="west", priority=1))  # fmt: skip
    down.fail_always("status", status=529)  # Anthropic's "overloaded"
    client = anthropic.Anthropic(base_url=gateway_url, api_key=failover_key, max_retries=0, timeout=30)
    raw = client.messages.with_raw_response.create(
        model="claude-pool", max_tokens=50, messages=[{"role": "user", "content": "hello"}], stream=stream
    )
    assert raw.headers[ATTEMPTS] == "2"
    answer = raw.parse()
    if stream:
        text = "".join(event.delta.text for event in answer if event.type == "content_block_delta")
    else:
        text = answer.content[0].text
    assert text == "Hello! You said: hello"
    assert received(down, up) == [1, 1]
    assert up.last_request.path == "/v1/messages"
    [row] = rows_once_logged(1)
    assert (row.deployment, row.attempts) == ("west", 2)


@pytest.mark.parametrize("path", ["relay", "litellm"])
def test_embeddings_fail_over_to_the_next_deployment(failover_client, fake_providers, path):
    down, up, _ = fake_providers
    embedding = "openai/text-embedding-3-small"
    make_model("embed-pool", deployment(down, path, litellm_model=embedding),
               deployment(up, path, litellm_model=embedding, name="backup", priority=1))  # fmt: skip
    down.fail_always("status", status=503)
    raw = failover_client.embeddings.with_raw_response.create(model="embed-pool", input="hello")
    assert raw.headers[ATTEMPTS] == "2"
    assert len(raw.parse().data[0].embedding) == 1536
    assert received(down, up) == [1, 1]
    [row] = rows_once_logged(1)
    assert (row.deployment, row.attempts) == ("backup", 2)


def test_responses_fail_over_to_the_next_deployment(failover_client, fake_providers):
    down, up, _ = fake_providers
    make_model("pool", deployment(down), deployment(up, name="second", priority=1))
    down.fail_always("status", status=502)
    raw = failover_client.responses.with_raw_response.create(model="pool", input="hello")
    assert raw.headers[ATTEMPTS] == "2" and raw.parse().output_text == "Hello! You said: hello"
    assert received(down, up) == [1, 1]
    assert up.last_request.path == "/v1/responses"
