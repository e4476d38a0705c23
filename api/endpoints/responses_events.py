"""The Responses API's wire pieces: its server-sent events, its usage block, and LiteLLM's answers in OpenAI's shape.

Streams are typed events (https://platform.openai.com/docs/api-reference/responses-streaming), each sent as
`event: <type>\\ndata: <json>\\n\\n` with a `sequence_number` from 0; the final `response.completed` (or
`response.incomplete`, `response.failed`) carries the response with its usage. A failure after the stream started is
an `error` event: `{"type": "error", "code", "message", "param", "sequence_number"}` (openai.types.responses.
ResponseErrorEvent).
"""

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any

import orjson

from api.errors import GatewayError

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
FAILED_EVENT = "response.failed"
ERROR_EVENT = "error"
END_OF_EVENT = (b"\n", b"\r\n")
# The fields of OpenAI's response object (openai.types.responses.Response, plus `store`): LiteLLM adds others.
RESPONSE_FIELDS = frozenset(
    {
        "id", "access_programs", "created_at", "error", "incomplete_details", "instructions", "metadata", "model",
        "object", "output", "parallel_tool_calls", "temperature", "tool_choice", "tools", "top_p", "background",
        "completed_at", "conversation", "image", "input_transformations", "max_output_tokens", "max_tool_calls",
        "moderation", "previous_response_id", "prompt", "prompt_cache_diagnostics", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "status",
        "store", "text", "tool_usage", "top_logprobs", "truncation", "usage", "user",
    }
)  # fmt: skip
LITELLM_ONLY_FIELDS = frozenset({"provider_specific_fields", "thinking_blocks"})
LITELLM_ID_PREFIX = "litellm:"
PROVIDER_ID_MARKER = ";response_id:"


class StreamFailure(GatewayError):
    """A failure after the stream started: its `error` event takes the stream's next sequence number."""

    def __init__(self, error: GatewayError, sequence_number: int) -> None:
        super().__init__(error.status, error.message, type=error.type, param=error.param, code=error.code,
                         headers=error.headers, from_provider=error.from_provider)  # fmt: skip
        self.sequence_number = sequence_number


def sse_event(event_type: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(error: GatewayError) -> bytes:
    data = {"type": ERROR_EVENT, "code": error.code or error.type, "message": error.message, "param": error.param,
            "sequence_number": getattr(error, "sequence_number", 0)}  # fmt: skip
    return sse_event(ERROR_EVENT, data)


def _part(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def _count(source: Any, name: str) -> int:
    value = _part(source, name) if source is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def account_usage(usage: Any) -> dict[str, Any] | None:
    """A Responses usage block (the provider's JSON or LiteLLM's ResponseAPIUsage) in the names the account reads
    (api.accounting set_usage: prompt/completion tokens, cached, cache-write and reasoning tokens)."""
    if not usage:
        return None
    input_details = _part(usage, "input_tokens_details")
    prompt, completion = _count(usage, "input_tokens"), _count(usage, "output_tokens")
    cached, written = _count(input_details, "cached_tokens"), _count(input_details, "cache_write_tokens")
    reasoning = _count(_part(usage, "output_tokens_details"), "reasoning_tokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def openai_usage(usage: Any) -> dict[str, Any]:
    """Usage with OpenAI's fields only (LiteLLM adds `cost`, `text_tokens`, …)."""
    input_details = _part(usage, "input_tokens_details")
    cached, written = _count(input_details, "cached_tokens"), _count(input_details, "cache_write_tokens")
    shaped_input: dict[str, Any] = {"cached_tokens": cached, "cache_write_tokens": written}
    write_details = _part(input_details, "cache_write_tokens_details") if input_details is not None else None
    if isinstance(write_details, dict):
        shaped_input["cache_write_tokens_details"] = write_details
    prompt, completion = _count(usage, "input_tokens"), _count(usage, "output_tokens")
    reasoning = _count(_part(usage, "output_tokens_details"), "reasoning_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": shaped_input,
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": _count(usage, "total_tokens") or prompt + completion,
    }


def without_litellm_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_litellm_fields(item) for key, item in value.items() if key not in LITELLM_ONLY_FIELDS}
    if isinstance(value, list):
        return [without_litellm_fields(item) for item in value]
    return value


def provider_response_id(response_id: Any) -> Any:
    """LiteLLM wraps a response id as `resp_` + base64("litellm:…;response_id:<provider's id>"): the provider's own
    Responses id (`resp_…`) is given back as it was; a bridged answer keeps LiteLLM's id (there is no provider id)."""
    if not isinstance(response_id, str) or not response_id.startswith("resp_"):
        return response_id
    encoded = response_id[5:]
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return response_id
    _, marker, provider_id = decoded.partition(PROVIDER_ID_MARKER)
    if decoded.startswith(LITELLM_ID_PREFIX) and marker and provider_id.startswith("resp_"):
        return provider_id
    return response_id


def openai_response(data: dict[str, Any]) -> dict[str, Any]:
    """A response object (LiteLLM's ResponsesAPIResponse dumped to a dict) with OpenAI's fields only."""
    shaped = {name: value for name, value in data.items() if name in RESPONSE_FIELDS}
    shaped["id"] = provider_response_id(shaped.get("id"))
    if isinstance(shaped.get("output"), list):
        shaped["output"] = without_litellm_fields(shaped["output"])
    if shaped.get("usage"):
        shaped["usage"] = openai_usage(shaped["usage"])
    return shaped


def openai_event(data: dict[str, Any]) -> dict[str, Any]:
    """A streamed event (LiteLLM's, dumped to a dict) with OpenAI's fields only."""
    if isinstance(data.get("response"), dict):
        data["response"] = openai_response(data["response"])
    return without_litellm_fields(data)


def dumped(model: Any) -> dict[str, Any]:
    """LiteLLM's pydantic object as plain JSON data (its usage sometimes holds a dict: no serializer warnings)."""
    return model.model_dump(mode="json", exclude_none=True, warnings=False)


# The relayed stream, read as whole events.


async def event_blocks(lines: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The provider's server-sent events, each as sent: its lines and the blank line that ends it."""
    block = bytearray()
    async for line in lines:
        if line in END_OF_EVENT:
            if block:
                yield bytes(block) + line
                block.clear()
            continue
        block += line
    if block.strip():
        yield bytes(block) + b"\n"


def event_fields(block: bytes) -> tuple[str, bytes]:
    """An event's type (its `event:` field, else its data's `type`) and its data."""
    name = b""
    data: list[bytes] = []
    for line in block.splitlines():
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
    payload = b"\n".join(data)
    if not name and payload.startswith(b"{"):
        try:
            kind = orjson.loads(payload).get("type")
        except (orjson.JSONDecodeError, AttributeError):
            kind = None
        name = kind.encode() if isinstance(kind, str) else b""
    return name.decode("utf-8", "replace"), payload


def delivered_deltas(payloads: list[bytes]) -> list[str]:
    """The texts of `….delta` events already sent (parsed only to estimate usage the provider did not report)."""
    texts = []
    for payload in payloads:
        try:
            delta = orjson.loads(payload).get("delta")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(delta, str) and delta:
            texts.append(delta)
    return texts
