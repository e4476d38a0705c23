"""Anthropic's wire shape as the Messages endpoint speaks it (api/anthropic_shape.py): pure functions."""

import orjson
import pytest

from api.anthropic_shape import (
    error_body,
    error_type,
    frame_name,
    frame_parts,
    merged_usage,
    openai_named_usage,
    stream_error,
)
from api.errors import GatewayError
from usage.cost import token_usage


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
     (404, "not_found_error"), (405, "invalid_request_error"), (413, "request_too_large"), (429, "rate_limit_error"),
     (500, "api_error"), (502, "api_error"), (503, "overloaded_error"), (504, "timeout_error"),
     (529, "overloaded_error")],
)  # fmt: skip
def test_error_type_follows_the_status(status, kind):
    assert error_type(status) == kind


def test_error_body_names_the_field_first():
    body = orjson.loads(error_body(GatewayError(400, "The model 'x' does not exist.", param="model")))
    assert body == {"type": "error", "error": {"type": "invalid_request_error",
                                               "message": "model: The model 'x' does not exist."}}  # fmt: skip
    already = orjson.loads(error_body(GatewayError(400, "messages.0.role: bad", param="messages.0.role")))
    assert already["error"]["message"] == "messages.0.role: bad"


def test_usage_counts_cache_reads_and_writes_in_the_prompt():
    usage = {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50,
             "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30}}  # fmt: skip
    counted = token_usage(openai_named_usage(usage))
    assert (counted.prompt_tokens, counted.completion_tokens) == (160, 7)
    assert (counted.cache_read_tokens, counted.cache_write_tokens, counted.cache_write_1h_tokens) == (100, 50, 30)
    assert openai_named_usage(None) is None


def test_stream_usage_is_message_start_updated_by_message_delta():
    start = {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 4}
    assert merged_usage(start, {"output_tokens": 30}) == {"input_tokens": 12, "output_tokens": 30,
                                                           "cache_read_input_tokens": 4}  # fmt: skip
    assert merged_usage({"input_tokens": 0}, {"input_tokens": 9, "output_tokens": 3, "x": None}) == {
        "input_tokens": 9, "output_tokens": 3,
    }  # fmt: skip


def test_frames():
    frame = b'event: message_delta\ndata: {"a":\ndata: 1}\n\n'
    assert frame_name(frame) == b"message_delta" and frame_parts(frame) == (b"message_delta", b'{"a":\n1}')
    assert frame_name(b"data: {}\n\n") == b""


def test_a_litellm_error_event_reads_as_the_provider_said():
    data = {"type": "error", "error": {"type": "api_error", "message": "litellm.MidStreamFallbackError: "
                                       "litellm.APIConnectionError: OpenAIException - upstream went away"}}  # fmt: skip
    error = stream_error(data, model="gpt-4o-mini")
    assert (error.status, error.message) == (502, "The provider for 'gpt-4o-mini' failed: upstream went away")
    overloaded = stream_error({"error": {"type": "overloaded_error", "message": "Overloaded"}}, model="m")
    assert overloaded.status == 503 and error_type(overloaded.status) == "overloaded_error"
