"""Anthropic's Messages wire format as the gateway speaks it: errors, usage, and the event stream's frames.

Errors (https://docs.anthropic.com/en/api/errors) are `{"type": "error", "error": {"type", "message"}}`. The HTTP
status stays the gateway's (the same fault gives the same status on every endpoint); the error type follows from
it, as Anthropic pairs them:

    400 (and other 4xx) invalid_request_error   401 authentication_error   402 billing_error
    403 permission_error   404 not_found_error   413 request_too_large   429 rate_limit_error (limits and budgets)
    500, 502 (and other 5xx) api_error   503 overloaded_error   504 timeout_error   529 overloaded_error

A message about one field starts with its path, as Anthropic's do ("messages.0.content: …", "model: …").
"""

from typing import Any

import orjson

from api.errors import GatewayError, scrub
from api.provider_errors import caller_message, error_for_status

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# A provider's error event in a stream, as the status the gateway reports for it (api.provider_errors).
STATUS_OF_ERROR_TYPE = {
    "invalid_request_error": 400,
    "request_too_large": 400,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "overloaded_error": 503,
    "timeout_error": 504,
    "authentication_error": 401,
    "permission_error": 403,
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_message(error: GatewayError) -> str:
    param = error.param
    if param and not error.message.startswith(f"{param}:"):
        return f"{param}: {error.message}"
    return error.message


def error_dict(error: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(error.status), "message": error_message(error)}}


def error_body(error: GatewayError) -> bytes:
    return orjson.dumps(error_dict(error))


def error_event(error: GatewayError) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(error_dict(error)) + b"\n\n"


def _count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_named_usage(usage: Any) -> dict[str, Any] | None:
    """Anthropic's usage under the names the account reads (usage.cost.token_usage): its `input_tokens` leave out
    the tokens read from and written to the cache, OpenAI's `prompt_tokens` include them."""
    if not isinstance(usage, dict):
        return None
    read, written = _count(usage, "cache_read_input_tokens"), _count(usage, "cache_creation_input_tokens")
    named: dict[str, Any] = {
        "prompt_tokens": _count(usage, "input_tokens") + read + written,
        "completion_tokens": _count(usage, "output_tokens"),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    }
    creation = usage.get("cache_creation")
    if isinstance(creation, dict) and _count(creation, "ephemeral_1h_input_tokens"):
        one_hour = {"ephemeral_1h_input_tokens": _count(creation, "ephemeral_1h_input_tokens")}
        named["prompt_tokens_details"] = {"cache_creation_token_details": one_hour}
    return named


def merged_usage(start: dict[str, Any] | None, delta: Any) -> dict[str, Any]:
    """A stream's usage: message_start's, updated by message_delta's (cumulative counts; either may lack some)."""
    usage = dict(start or {})
    if isinstance(delta, dict):
        usage.update({name: value for name, value in delta.items() if value is not None})
    return usage


def frame_name(frame: bytes) -> bytes:
    """A server-sent event's name, cheaply: Anthropic (and LiteLLM's adapter) send the `event:` line first."""
    if frame.startswith(b"event:"):
        end = frame.find(b"\n")
        return frame[6 : end if end >= 0 else None].strip()
    return frame_parts(frame)[0]


def frame_parts(frame: bytes) -> tuple[bytes, bytes]:
    """A server-sent event's name and its data (the `data:` lines joined)."""
    name, data = b"", []
    for line in frame.splitlines():
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            data.append(line[5:].strip())
    return name, b"\n".join(data)


def frame_data(frame: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(frame_parts(frame)[1])
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def stream_error(data: dict[str, Any], *, model: str) -> GatewayError:
    """A provider's `error` event (Anthropic's, or LiteLLM's adapter reporting a failed provider) as what the
    client is told; LiteLLM's class names and advice are removed from the message."""
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    kind = error.get("type") if isinstance(error.get("type"), str) else "api_error"
    message = error.get("message") if isinstance(error.get("message"), str) else "no message"
    return error_for_status(STATUS_OF_ERROR_TYPE.get(kind, 502), scrub(caller_message(message))[:2000], model=model)


def delivered_texts(frames: list[bytes]) -> list[str]:
    """The text, tool input and thinking the content_block_delta frames carried (to estimate missing usage)."""
    texts = []
    for frame in frames:
        delta = frame_data(frame).get("delta")
        if isinstance(delta, dict):
            for name in ("text", "partial_json", "thinking"):
                if isinstance(delta.get(name), str):
                    texts.append(delta[name])
    return texts
