"""POST /v1/messages with a model that is not Anthropic's: LiteLLM's Anthropic adapter translates the request to the
provider's API (here OpenAI's chat completions) and the answer back, so Claude Code runs on any allowed model.
Runs on both paths (the direct relay, and with LLMPROXY_DIRECT_RELAY=0).
"""

import anthropic
import pytest

from tests.support.anthropic_gateway import HELLO, TRANSLATED, client_for
from tests.support.request_log import logged_rows, rows_once_logged

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def anthropic_client(gateway_url, api_key, policy) -> anthropic.Anthropic:
    return client_for(gateway_url, api_key)


def test_openai_wire_model_is_translated(anthropic_client, fake_provider):
    options = {"metadata": {"user_id": "u-1"}, "service_tier": "auto"}
    message = anthropic_client.messages.create(model=TRANSLATED, max_tokens=20, system="Be terse.", messages=HELLO,
                                               **options)  # fmt: skip
    assert message.type == "message" and message.content[0].text == "Hello! You said: hello"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 4)
    sent = fake_provider.last_request
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "fake-model"
    assert sent.body["messages"] == [{"role": "system", "content": "Be terse."}, *HELLO]
    assert "service_tier" not in sent.body and "metadata" not in sent.body  # Anthropic's own features: left out


def test_openai_wire_model_streams_anthropic_events(anthropic_client, fake_provider):
    with anthropic_client.messages.stream(model=TRANSLATED, max_tokens=20, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello! You said: hello" and final.usage.output_tokens == 4
    assert fake_provider.last_request.body["stream"] is True
    [row] = rows_once_logged(1)
    assert (row.endpoint, row.resolved_model, row.streamed, row.completion_tokens) == ("messages", TRANSLATED, True, 4)


def test_translated_usage_counts_cached_tokens(anthropic_client):
    message = anthropic_client.messages.create(
        model=TRANSLATED, max_tokens=20, messages=[{"role": "user", "content": "CACHE a b c"}]
    )
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (2, 2)  # Anthropic's way
    row = logged_rows()[-1]
    assert (row.prompt_tokens, row.cache_read_tokens, row.cache_write_tokens) == (4, 2, 0)  # the gateway's


def test_translated_provider_rate_limit_is_a_rate_limit_error(anthropic_client, fake_provider):
    fake_provider.fail_next("status", status=429, headers={"retry-after": "7"})
    with pytest.raises(anthropic.RateLimitError) as caught:
        anthropic_client.messages.create(model=TRANSLATED, max_tokens=20, messages=HELLO)
    assert caught.value.response.headers["Retry-After"] == "7"
    assert "litellm" not in caught.value.body["error"]["message"].lower()


def test_translated_thinking_is_dropped_for_a_model_without_reasoning(anthropic_client, fake_provider):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with anthropic_client.messages.stream(model=TRANSLATED, max_tokens=2000, messages=HELLO, thinking=thinking) as s:
        assert "".join(s.text_stream) == "Hello! You said: hello"
