"""POST /v1/responses: the OpenAI SDK against a live gateway, the fake provider recording what it received.

Runs on both paths: OpenAI-wire models relayed to the provider's /responses, and with LLMPROXY_DIRECT_RELAY=0 through
litellm.aresponses; the Claude models always go through LiteLLM's Responses bridge (to Anthropic's Messages API).
"""

import time
from decimal import Decimal
from functools import partial

import httpx
import openai
import orjson
import pytest

from tests.support.fake_wire import STREAM_ERROR_MESSAGE, TOOL_ARGUMENTS
from tests.support.openai_gateway import assert_invalid_request, client_for, post_json
from tests.support.request_log import rows_once_logged
from tests.usage.conftest import wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)

post = partial(post_json, path="/v1/responses")  # post(gateway_url, key, body)

CLAUDE = "claude-sonnet-4-5"  # priced in LiteLLM's cost map: $3 / $15 per million input / output tokens
PRICED = "mini-priced"  # openai/gpt-4o-mini: $0.15 / $0.60 per million, cached input $0.075
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
TEXT_TAIL = ["response.output_text.done", "response.content_part.done", "response.output_item.done",
             "response.completed"]  # fmt: skip


@pytest.fixture
def responses_models(policy, fake_provider) -> None:
    from routing.services import create_model

    create_model(PRICED, litellm_model="openai/gpt-4o-mini", api_base=fake_provider.openai_base)
    base = fake_provider.openai_base
    create_model("capped-20", litellm_model="openai/fake-capped", api_base=base, max_tokens=20)
    create_model(CLAUDE, litellm_model=f"anthropic/{CLAUDE}", api_base=fake_provider.anthropic_base, max_tokens=50)


@pytest.fixture
def client(openai_client, responses_models) -> openai.OpenAI:
    return openai_client


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    """(event name, data) of every server-sent event, as the bytes arrived."""
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            events.append((lines.get("event", ""), orjson.loads(lines["data"])))
    return events


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE])
def test_plain_answer_and_usage(client, fake_provider, model):
    response = client.responses.create(model=model, input="hi there", instructions="be brief")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Hello! You said: hi there"
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (4, 5, 9)
    sent = fake_provider.last_request
    if model == CLAUDE:  # LiteLLM's bridge to the Messages API
        assert (sent.path, sent.body["model"]) == ("/v1/messages", CLAUDE)
        assert sent.body["system"] == [{"type": "text", "text": "be brief"}]
        assert "provider_specific_fields" not in response.model_dump() and response.id.startswith("resp_")
    else:
        assert (sent.path, sent.body["model"], sent.body["input"]) == ("/v1/responses", "fake-model", "hi there")
        assert response.id.startswith("resp_fake_")  # the provider's own id on both paths


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE])
def test_streamed_events_arrive_in_order_with_usage_at_the_end(client, model):
    events = list(client.responses.create(model=model, input="hi there", stream=True))
    types = [event.type for event in events]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert types == TEXT_EVENTS + ["response.output_text.delta"] * len(deltas) + TEXT_TAIL and len(deltas) > 1
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(deltas) == "Hello! You said: hi there"
    final = events[-1].response
    assert (final.output_text, final.usage.input_tokens, final.usage.output_tokens) == ("Hello! You said: hi there",
                                                                                        2, 5)  # fmt: skip


def test_the_sdk_stream_helper_gives_the_final_response(client):
    with client.responses.stream(model="fast", input="hi there") as stream:
        texts = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "Hello! You said: hi there"
    assert final.usage.total_tokens == 7


def test_the_wire_is_typed_server_sent_events(gateway_url, api_key, responses_models):
    response = post(gateway_url, api_key, {"model": "gpt-4o-mini", "input": "hi there", "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert all(name == data["type"] for name, data in events) and events[-1][0] == "response.completed"


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE])
def test_function_call_round_trip(client, fake_provider, model):
    first = client.responses.create(model=model, input="weather in Paris?", tools=[WEATHER_TOOL])
    [call] = first.output
    assert (call.type, call.name, call.arguments) == ("function_call", "get_weather", TOOL_ARGUMENTS)
    history = [{"role": "user", "content": "weather in Paris?"}, call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]  # fmt: skip
    second = client.responses.create(model=model, input=history, tools=[WEATHER_TOOL])
    assert second.output_text == "Tool said: sunny"
    streamed = list(client.responses.create(model=model, input="weather?", tools=[WEATHER_TOOL], stream=True))
    arguments = "".join(event.delta for event in streamed if event.type == "response.function_call_arguments.delta")
    assert arguments == TOOL_ARGUMENTS and streamed[-1].response.output[0].type == "function_call"


@pytest.mark.parametrize(
    ("model", "sent", "received"),
    [("capped-20", 100, 20), ("capped-20", None, 20), ("capped-20", 16, 16), (CLAUDE, 500, 50), (CLAUDE, 30, 30)],
)
def test_the_cap_applies_to_max_output_tokens(client, fake_provider, model, sent, received):
    limit = {} if sent is None else {"max_output_tokens": sent}
    client.responses.create(model=model, input="hi there", **limit)
    body = fake_provider.last_request.body
    assert body["max_tokens" if model == CLAUDE else "max_output_tokens"] == received


def test_tokens_per_minute_reserve_the_input_and_the_output_limit(gateway_url, responses_models):
    from keys.services import create_api_key

    wait_for_minute_window()
    key = create_api_key(name="tpm-100", tpm_limit=100).plaintext
    answered = post(gateway_url, key, {"model": "gpt-4o-mini", "input": "hi there", "max_output_tokens": 60})
    assert answered.status_code == 200
    assert answered.headers["x-ratelimit-remaining-tokens"] == str(100 - (60 + 8 // 4 + 4))
    refused = post(gateway_url, key, {"model": "gpt-4o-mini", "input": "hi there"})  # 4096 output tokens held
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_exceeded"


def test_alias_is_rewritten(client, fake_provider):
    client.responses.create(model="fast", input="x")
    assert fake_provider.last_request.body["model"] == "fake-model"


@pytest.mark.parametrize("model", ["no-such-model", "disabled-model"])
def test_model_not_allowed_is_a_400_naming_model(client, fake_provider, model):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input="x")
    assert caught.value.body["param"] == "model" and caught.value.body["code"] == "model_not_found"
    assert fake_provider.requests == []


def test_key_allowlist(gateway_url, responses_models):
    from keys.services import create_api_key

    claude_only = client_for(gateway_url, create_api_key(name="claude-only", models=[CLAUDE]).plaintext)
    with pytest.raises(openai.BadRequestError) as caught:
        claude_only.responses.create(model="gpt-4o-mini", input="x")
    assert "may not use" in caught.value.body["message"] and caught.value.body["param"] == "model"
    assert claude_only.responses.create(model=CLAUDE, input="x").status == "completed"
    via_alias = client_for(gateway_url, create_api_key(name="fast-only", models=["fast"]).plaintext)
    assert via_alias.responses.create(model="gpt-4o-mini", input="x").status == "completed"


def test_key_rpm_limit(gateway_url, responses_models):
    from keys.services import create_api_key

    wait_for_minute_window()
    key = create_api_key(name="rpm-2", rpm_limit=2).plaintext
    statuses = [post(gateway_url, key, {"model": "gpt-4o-mini", "input": "x"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = post(gateway_url, key, {"model": "gpt-4o-mini", "input": "x"})
    assert refused.json()["error"]["type"] == "rate_limit_exceeded" and "Retry-After" in refused.headers


def test_usage_rows_have_the_endpoint_tokens_and_cost(client):
    client.responses.create(model=PRICED, input="hi there CACHE")  # 3 input tokens, 1 of them cached; 6 output
    list(client.responses.create(model=CLAUDE, input="hi there", instructions="be brief", stream=True))
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="nope", input="x")
    priced, claude, refused = rows_once_logged(3)
    assert (priced.endpoint, priced.requested_model, priced.status, priced.end_reason) == ("responses", PRICED, 200,
                                                                                          "completed")  # fmt: skip
    assert (priced.prompt_tokens, priced.completion_tokens, priced.cache_read_tokens) == (3, 6, 1)
    expected = 2 * Decimal("0.00000015") + Decimal("0.000000075") + 6 * Decimal("0.0000006")  # uncached, cached, output
    assert priced.cost_usd == expected.quantize(priced.cost_usd)  # the column keeps 8 decimal places
    assert not priced.usage_estimated and not priced.streamed
    assert (claude.endpoint, claude.streamed, claude.prompt_tokens, claude.completion_tokens) == ("responses", True,
                                                                                                 4, 5)  # fmt: skip
    assert claude.cost_usd == 4 * Decimal("0.000003") + 5 * Decimal("0.000015")
    assert (refused.endpoint, refused.status, refused.end_reason) == ("responses", 400, "rejected")


@pytest.mark.parametrize("model", ["gpt-4o-mini", CLAUDE])
@pytest.mark.parametrize(
    ("field", "value"),
    [("previous_response_id", "resp_fake_1"), ("conversation", "conv_1"), ("conversation", {"id": "conv_1"}),
     ("background", True)],
)  # fmt: skip
def test_stateful_features_are_refused_naming_the_field(client, fake_provider, model, field, value):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input="more", **{field: value})
    error = caught.value.body
    assert (error["param"], error["code"]) == (field, "unsupported_parameter")
    assert "input items" in error["message"] or field == "background"
    assert fake_provider.requests == []


def test_an_item_reference_is_refused(client, fake_provider):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input=[{"type": "item_reference", "id": "msg_fake_1"}])
    assert caught.value.body["param"] == "input.[0]" and fake_provider.requests == []


def test_the_bridge_needs_tool_call_arguments_as_json(client, fake_provider):
    call = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "Paris, please"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=CLAUDE, input=[{"role": "user", "content": "weather?"}, call])
    assert caught.value.body["param"] == "input.[1].arguments" and fake_provider.requests == []


def test_store_reaches_openai_wire_providers_only(client, fake_provider):
    client.responses.create(model="gpt-4o-mini", input="x", store=False)
    assert fake_provider.last_request.body["store"] is False and fake_provider.responses.stored == {}
    client.responses.create(model=CLAUDE, input="x", store=True)  # LiteLLM's bridge keeps nothing
    assert "store" not in fake_provider.last_request.body


@pytest.mark.parametrize("model", [PRICED, CLAUDE])  # LiteLLM fakes the stream of a model outside its catalogue
def test_a_stream_failing_midway_ends_with_an_error_event_and_an_honest_row(gateway_url, api_key, responses_models,
                                                                          fake_provider, model):  # fmt: skip
    fake_provider.fail_next("stream_error")
    response = post(gateway_url, api_key, {"model": model, "input": "hi there", "stream": True})
    assert response.status_code == 200
    events = sse_events(response)
    [(index, error)] = [(index, data) for index, (name, data) in enumerate(events) if name == "error"]
    assert set(error) == {"type", "code", "message", "param", "sequence_number"}
    assert error["sequence_number"] == index and STREAM_ERROR_MESSAGE in error["message"]
    assert "litellm" not in error["message"].lower()
    assert "response.completed" not in [name for name, _ in events]
    [row] = rows_once_logged(1)
    assert (row.endpoint, row.status, row.end_reason, row.streamed) == ("responses", 502, "provider_error", True)
    assert row.prompt_tokens > 0 and row.completion_tokens > 0


def test_a_cut_stream_ends_with_the_gateways_error_event(gateway_url, api_key, responses_models, fake_provider):
    fake_provider.fail_next("cut", after=2)
    events = sse_events(post(gateway_url, api_key, {"model": PRICED, "input": "hi there", "stream": True}))
    name, error = events[-1]
    assert (name, error["type"], error["code"]) == ("error", "error", "provider_error")
    assert error["sequence_number"] == len(events) - 1
    [row] = rows_once_logged(1)
    delivered = [data for name, data in events if name == "response.output_text.delta"]
    assert (row.end_reason, row.usage_estimated, row.prompt_tokens) == ("provider_error", True, 2)
    assert (row.completion_tokens > 0) == bool(delivered)  # what reached the client (aiohttp may drop the rest)


@pytest.mark.parametrize("model", [PRICED, CLAUDE])
def test_client_disconnect_closes_the_provider_stream(gateway_url, api_key, responses_models, fake_provider, model):
    fake_provider.chunk_delay = 0.2
    body = {"model": model, "input": "REPEAT 100", "stream": True}
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(timeout=30) as http, http.stream("POST", f"{gateway_url}/v1/responses", json=body,
                                                       headers=headers) as response:  # fmt: skip
        assert response.status_code == 200
        for _ in response.iter_bytes():
            break  # the first event seen: hang up
    deadline = time.monotonic() + 3
    while fake_provider.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_provider.disconnects == 1
    [row] = rows_once_logged(1)
    assert (row.endpoint, row.end_reason, row.streamed) == ("responses", "client_disconnected", True)


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_that_is_not_json_is_a_502_before_any_event(gateway_url, api_key, responses_models, fake_provider,
                                                              stream):  # fmt: skip
    fake_provider.fail_next("invalid_json")
    response = post(gateway_url, api_key, {"model": PRICED, "input": "hi there", "stream": stream})
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "provider_error"
    assert "litellm" not in response.text.lower()


def test_provider_errors_are_mapped_as_for_chat(client, fake_provider):
    with pytest.raises(openai.BadRequestError) as caught:  # the fake refuses fields OpenAI does not know
        client.responses.create(model="gpt-4o-mini", input="x", extra_body={"vendor_flag": 1})
    assert "vendor_flag" in caught.value.body["message"]
    assert caught.value.body["code"] == "provider_rejected_request"
    fake_provider.fail_next("status", status=429, headers={"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="gpt-4o-mini", input="x")
    assert limited.value.body["code"] == "provider_rate_limited"


def test_fields_the_bridge_cannot_send_are_refused(client, fake_provider):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=CLAUDE, input="x", extra_body={"prompt_cache_key": "k"})
    assert caught.value.body["param"] == "prompt_cache_key" and fake_provider.requests == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o-mini"}, "input"),
        ({"model": "gpt-4o-mini", "input": 5}, "input"),
        ({"model": "gpt-4o-mini", "input": [5]}, "input.[0]"),
        ({"model": "gpt-4o-mini", "input": [{"role": "robot", "content": "x"}]}, "input.[0].role"),
        ({"model": "gpt-4o-mini", "input": [{"role": "user", "content": 5}]}, "input.[0].content"),
        (
            {"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input.[0].content.[0].text",
        ),
        ({"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"text": "x"}]}]}, "input.[0].content.[0]"),
        ({"model": "gpt-4o-mini", "input": [{"type": "function_call_output", "output": "x"}]}, "input.[0].call_id"),
        (
            {"model": "gpt-4o-mini", "input": [{"type": "function_call", "call_id": "c", "name": "f"}]},
            "input.[0].arguments",
        ),
        ({"model": "gpt-4o-mini", "input": "x", "stream": "yes"}, "stream"),
        ({"model": "gpt-4o-mini", "input": "x", "max_output_tokens": 15}, "max_output_tokens"),
        ({"model": "gpt-4o-mini", "input": "x", "max_output_tokens": "many"}, "max_output_tokens"),
        ({"model": "gpt-4o-mini", "input": "x", "temperature": 3}, "temperature"),
        ({"model": "gpt-4o-mini", "input": "x", "top_p": 2}, "top_p"),
        ({"model": "gpt-4o-mini", "input": "x", "tools": [5]}, "tools.[0]"),
        ({"model": "gpt-4o-mini", "input": "x", "tools": [{"type": "function"}]}, "tools.[0].name"),
        ({"model": "gpt-4o-mini", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "gpt-4o-mini", "input": "x", "tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"model": "gpt-4o-mini", "input": "x", "instructions": 5}, "instructions"),
        ({"model": "gpt-4o-mini", "input": "x", "user": 5}, "user"),
        ({"model": "gpt-4o-mini", "input": "x", "metadata": {"k": 5}}, "metadata.k"),
        ({"model": "gpt-4o-mini", "input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"model": "gpt-4o-mini", "input": "x", "text": "plain"}, "text"),
        ({"model": "gpt-4o-mini", "input": "x", "reasoning": 5}, "reasoning"),
        ({"model": "gpt-4o-mini", "input": "x", "store": "yes"}, "store"),
        ({"model": "gpt-4o-mini", "input": "x", "api_base": "http://evil.example"}, "api_base"),
        ({"model": "gpt-4o-mini", "input": "x", "mock_response": "hi"}, "mock_response"),
        ({"model": 7, "input": "x"}, "model"),
        ({"input": "x"}, "model"),
    ],
)
def test_bad_input_is_an_openai_shaped_400_naming_the_param(gateway_url, api_key, responses_models, fake_provider,
                                                           body, param):  # fmt: skip
    assert_invalid_request(post(gateway_url, api_key, body), param)
    assert fake_provider.requests == []


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]"])
def test_unreadable_bodies_are_400s(gateway_url, api_key, responses_models, body):
    response = httpx.post(f"{gateway_url}/v1/responses", content=body, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_missing_key_is_a_401_and_wrong_method_a_405(gateway_url, api_key, responses_models):
    response = httpx.post(f"{gateway_url}/v1/responses", json={"model": "gpt-4o-mini", "input": "x"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    response = httpx.get(f"{gateway_url}/v1/responses", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


@pytest.mark.parametrize(("litellm_model", "path"), [("hosted_vllm/fake-vllm", "/v1/responses"),
                                                      ("openai_like/fake-like", "/v1/chat/completions")])  # fmt: skip
def test_self_hosted_servers(client, fake_provider, litellm_model, path):
    """vLLM serves /responses itself; a generic OpenAI-compatible server goes through LiteLLM's bridge to its chat."""
    from routing.services import create_model

    create_model("self-hosted", litellm_model=litellm_model, api_base=fake_provider.openai_base)
    response = client.responses.create(model="self-hosted", input="hi there")
    assert response.output_text == "Hello! You said: hi there" and response.usage.output_tokens == 5
    assert fake_provider.last_request.path == path


def test_use_litellm_goes_through_litellm_aresponses(client, fake_provider):
    from routing.models import Deployment

    deployment = Deployment.objects.get(model__name=PRICED)
    deployment.use_litellm = True
    deployment.save()
    response = client.responses.create(model=PRICED, input="hi there")
    assert fake_provider.last_request.headers["user-agent"].startswith("litellm/")  # LiteLLM's HTTP client
    assert fake_provider.last_request.path == "/v1/responses" and response.id.startswith("resp_fake_")
    assert "cost" not in response.usage.model_dump()
