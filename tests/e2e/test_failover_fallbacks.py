"""Fallback models (issue 10): when every deployment of a model fails, its `fallbacks` answer, each with its own cap
and whatever the key's allowlist says; a context-window refusal goes to its `context_window_fallbacks` instead, and
no other deployment of the model is tried (they share the window). A plain 400 goes nowhere."""

import openai
import pytest

from tests.e2e.conftest import ATTEMPTS, ask, deployment, make_model, received
from tests.support.fake_wire import SMALL_CONTEXT_WINDOW
from tests.support.request_log import rows_once_logged

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["relay", "litellm", "anthropic"]
SMALL_CONTEXT = {"relay": "openai/fake-model-small-context", "litellm": "openai/fake-model-small-context",
                 "anthropic": "anthropic/claude-x-small-context"}  # fmt: skip
# Over the fake's small window (characters / 4), in words that differ: LiteLLM ends a stream that repeats one chunk.
TOO_LONG = " ".join(f"w{index}" for index in range(SMALL_CONTEXT_WINDOW))


def client_for(gateway_url: str, models: list[str]) -> openai.OpenAI:
    from keys.services import create_api_key

    key = create_api_key(name="allowlisted", models=models).plaintext
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("path", PATHS)
def test_when_every_deployment_fails_a_fallback_answers_with_its_own_cap(gateway_url, fake_providers, path, stream):
    first, second, backup = fake_providers
    make_model("backup", deployment(backup, path, name="backup-east"), max_tokens=5)
    make_model("spare", deployment(backup, path))  # second in the list: never asked, "backup" answers
    make_model("primary", deployment(first, path), deployment(second, path, priority=1), fallbacks="backup,spare")
    first.fail_always("status", status=503)
    second.fail_always("status", status=429)
    client = client_for(gateway_url, ["primary"])  # the allowlist lacks "backup": not asked again for a fallback

    assert ask(client, "primary", text="REPEAT 20", stream=stream, max_tokens=50) == ("w1 w2 w3 w4 w5", 3)
    assert received(first, second, backup) == [1, 1, 1]
    assert backup.last_request.body["max_tokens"] == 5  # the fallback's cap, not the caller's 50
    [row] = rows_once_logged(1)
    assert (row.status, row.deployment, row.attempts, row.fallback_model) == (200, "backup-east", 3, "backup")
    with pytest.raises(openai.BadRequestError) as refused:  # asked for by name, the allowlist still refuses it
        ask(client, "backup")
    assert refused.value.code == "model_not_found"


def test_fallbacks_are_tried_in_order_until_one_answers(failover_client, fake_providers):
    main, dead_fallback, live_fallback = fake_providers
    make_model("first-choice", deployment(dead_fallback))
    make_model("second-choice", deployment(live_fallback, name="last-resort"))
    make_model("main", deployment(main), fallbacks="first-choice, second-choice")
    main.fail_always("status", status=500)
    dead_fallback.fail_always("status", status=502)
    assert ask(failover_client, "main") == ("Hello! You said: hi", 3)
    assert received(main, dead_fallback, live_fallback) == [1, 1, 1]
    [row] = rows_once_logged(1)
    assert (row.deployment, row.attempts, row.fallback_model) == ("last-resort", 3, "second-choice")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("path", PATHS)
def test_a_context_window_refusal_goes_to_the_context_window_fallback_only(
    failover_client, fake_providers, path, stream
):
    small, other_small, big = fake_providers
    window = SMALL_CONTEXT[path]
    make_model("big", deployment(big, path, name="big-one"))
    make_model("ordinary-fallback", deployment(big, path, litellm_model=window))
    make_model("small", deployment(small, path, litellm_model=window),
               deployment(other_small, path, litellm_model=window, priority=1),
               fallbacks="ordinary-fallback", context_window_fallbacks="big")  # fmt: skip

    text, attempts = ask(failover_client, "small", text=TOO_LONG, stream=stream)
    assert text.startswith("Hello! You said: w0 w1 w2") and attempts == 2
    assert received(small, other_small, big) == [1, 0, 1]  # the model's other deployment shares its window
    assert big.last_request.body["model"] in ("fake-model", "claude-sonnet-4-5")
    [row] = rows_once_logged(1)
    assert (row.status, row.deployment, row.attempts, row.fallback_model) == (200, "big-one", 2, "big")


@pytest.mark.parametrize("path", PATHS)
def test_without_a_context_window_fallback_the_caller_gets_openais_code(failover_client, fake_providers, path):
    small, other_small, spare = fake_providers
    window = SMALL_CONTEXT[path]
    make_model("spare", deployment(spare, path))
    make_model("small", deployment(small, path, litellm_model=window),
               deployment(other_small, path, litellm_model=window, priority=1), fallbacks="spare")  # fmt: skip
    with pytest.raises(openai.BadRequestError) as refused:
        ask(failover_client, "small", text=TOO_LONG)
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.response.headers[ATTEMPTS] == "1"
    assert received(small, other_small, spare) == [1, 0, 0]  # neither the other deployment nor the fallbacks


@pytest.mark.parametrize("path", PATHS)
def test_a_plain_400_does_not_go_to_the_fallbacks(failover_client, fake_providers, path):
    main, _, backup = fake_providers
    make_model("backup", deployment(backup, path))
    make_model("main", deployment(main, path), fallbacks="backup", context_window_fallbacks="backup")
    main.fail_always("status", status=400)
    with pytest.raises(openai.BadRequestError) as refused:
        ask(failover_client, "main")
    assert refused.value.code != "context_length_exceeded"
    assert received(main, backup) == [1, 0]
    [row] = rows_once_logged(1)
    assert (row.status, row.attempts, row.fallback_model) == (400, 1, "")
