"""Anthropic's Messages API wire format (https://docs.anthropic.com/en/api/messages), as the fake provider serves
it at `POST /v1/messages`, non-streaming and streaming.

- Headers (https://docs.anthropic.com/en/api/overview#authentication, https://docs.anthropic.com/en/api/versioning):
  the key comes as `x-api-key` or `Authorization: Bearer` (the `anthropic` SDK 2.x sends the latter); neither is a
  401 `authentication_error` "x-api-key header is required"; no `anthropic-version` a 400 `invalid_request_error`
  "anthropic-version: header is required".
- Body: an unknown top-level field is a 400 "<field>: Extra inputs are not permitted"; a missing `max_tokens` or
  `messages` a 400 "<field>: Field required"; a model id not starting with "claude-" or "fake-" a 404
  `not_found_error` "model: <id>" (https://docs.anthropic.com/en/api/errors); a prompt (system and messages) over
  the model's window (fake_wire.context_window) a 400 `invalid_request_error` "prompt is too long: M tokens > N
  maximum" (https://docs.anthropic.com/en/docs/build-with-claude/context-windows). `system` is a string or text
  blocks; `stop_sequences` end the reply (stop_reason "stop_sequence"); `max_tokens` cuts it (stop_reason "max_tokens");
  with `tools` (and tool_choice not "none") the reply is a `tool_use` block (stop_reason "tool_use"), and a
  `tool_result` in the last user message is answered "Tool said: ...".
- Usage: `input_tokens`, `output_tokens`, and always `cache_creation_input_tokens` / `cache_read_input_tokens`
  (a prompt saying CACHE reads half and writes a quarter of its tokens, left out of `input_tokens`, as Anthropic
  counts them: https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).
- Stream (https://docs.anthropic.com/en/docs/build-with-claude/streaming): `message_start` (usage with the input
  tokens), `content_block_start`, `ping`, `content_block_delta` (`text_delta` or `input_json_delta`)…,
  `content_block_stop`, `message_delta` (stop_reason, stop_sequence, `usage.output_tokens`), `message_stop`; a
  failing stream sends `event: error` with `{"type": "error", "error": {"type": "overloaded_error", ...}}`.
- A 429 is `rate_limit_error` (its `retry-after` header set by the fault), a 529 `overloaded_error`, a 500
  `api_error` (https://docs.anthropic.com/en/api/errors, https://docs.anthropic.com/en/api/rate-limits).
"""

from typing import Any

from tests.support.fake_wire import (
    STREAM_ERROR_MESSAGE,
    TOOL_INPUT,
    Event,
    EventKind,
    Reply,
    block_text,
    content_text,
    context_window,
    dumps,
    finish,
    limit_of,
    pieces,
    prompt_tokens,
    reply_text,
    says_cache,
    tool_call,
    word_count,
)

# Top-level fields of Anthropic's Messages API (https://docs.anthropic.com/en/api/messages); others are refused.
ANTHROPIC_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k",
        "metadata", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_config", "inference_geo",
    }
)  # fmt: skip
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def with_anthropic_cache(body: dict, usage: dict) -> dict:
    """Anthropic's input_tokens leaves out the tokens read from and written to the cache."""
    if not says_cache(body):
        return {**usage, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    read, written = usage["input_tokens"] // 2, usage["input_tokens"] // 4
    return {**usage, "input_tokens": usage["input_tokens"] - read - written, "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written}  # fmt: skip


def anthropic_serves(model: Any) -> bool:
    return isinstance(model, str) and model.startswith(("claude-", "fake-"))


def anthropic_header_refusal(headers: dict[str, str]) -> tuple[int, dict] | None:
    """The 401/400 the real Anthropic API answers to a missing key (`x-api-key` or `Authorization: Bearer`, which the
    `anthropic` SDK 2.x sends) or a missing `anthropic-version` header, or None."""
    if not headers.get("x-api-key") and not headers.get("authorization", "").startswith("Bearer "):
        return 401, anthropic_error(401, "x-api-key header is required")
    if not headers.get("anthropic-version"):
        return 400, anthropic_error(400, "anthropic-version: header is required")
    return None


def anthropic_refusal(body: dict) -> tuple[int, dict] | None:
    """The 4xx the real Anthropic API answers to this body (unknown field, missing field, unknown model), or None."""
    unknown = sorted(set(body) - ANTHROPIC_FIELDS)
    if unknown:
        return 400, anthropic_error(400, f"{unknown[0]}: Extra inputs are not permitted")
    for field in ("max_tokens", "messages", "model"):
        if field not in body:
            return 400, anthropic_error(400, f"{field}: Field required")
    if not anthropic_serves(body["model"]):
        return 404, anthropic_error(404, f"model: {body['model']}")
    window = context_window(body["model"])
    messages = [message for message in body.get("messages") or [] if isinstance(message, dict)]
    texts = [content_text(body.get("system")), *(block_text(message.get("content")) for message in messages)]
    used = prompt_tokens(*texts)
    if window is not None and used > window:
        return 400, anthropic_error(400, f"prompt is too long: {used} tokens > {window} maximum")
    return None


def anthropic_error(status: int, message: str | None = None, kind: str | None = None) -> dict:
    kind = kind or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or f"fake provider error {status}"}}


def anthropic_plan(body: dict) -> Reply:
    messages = [message for message in body.get("messages") or [] if isinstance(message, dict)]
    input_tokens = word_count(content_text(body.get("system"))) + sum(
        word_count(block_text(message.get("content"))) for message in messages
    )
    last = messages[-1] if messages else {}
    last_blocks = last.get("content") if isinstance(last.get("content"), list) else []
    results = [block for block in last_blocks if isinstance(block, dict) and block.get("type") == "tool_result"]
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    if last.get("role") == "user" and results:
        text = "Tool said: " + block_text(results[-1].get("content"))
    elif tools and choice.get("type") != "none":
        return tool_call(choice.get("name") or tools[0].get("name", "tool"), input_tokens)
    else:
        users = [message for message in messages if message.get("role") == "user"]
        text = reply_text(content_text(users[-1].get("content")) if users else "")
    return finish(text, body.get("stop_sequences"), limit_of(body.get("max_tokens")), input_tokens)


def anthropic_stop_reason(reply: Reply) -> str:
    return {"tool": "tool_use", "length": "max_tokens", "stop_sequence": "stop_sequence"}.get(reply.reason, "end_turn")


def anthropic_message(body: dict, number: int, reply: Reply, content: list, output_tokens: int) -> dict:
    return {
        "id": f"msg_fake_{number}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": anthropic_stop_reason(reply) if content else None,
        "stop_sequence": reply.stop_sequence if content else None,
        "usage": with_anthropic_cache(body, {"input_tokens": reply.input_tokens, "output_tokens": output_tokens}),
    }


def anthropic_json(body: dict, number: int) -> dict:
    reply = anthropic_plan(body)
    block = {"type": "text", "text": reply.text}
    if reply.tool:
        block = {"type": "tool_use", "id": "toolu_fake_1", "name": reply.tool, "input": TOOL_INPUT}
    return anthropic_message(body, number, reply, [block], reply.output_tokens)


def sse(kind: EventKind, name: str, data: dict) -> Event:
    return Event(kind, b"event: " + name.encode() + b"\ndata: " + dumps({"type": name, **data}) + b"\n\n")


def anthropic_stream(body: dict, number: int, stream_chunks: int | None) -> list[Event]:
    reply = anthropic_plan(body)
    if reply.tool:
        block = {"type": "tool_use", "id": "toolu_fake_1", "name": reply.tool, "input": {}}
        parts = pieces(reply.text, stream_chunks or 3)
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in parts]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces(reply.text, stream_chunks)]
    stop = {"stop_reason": anthropic_stop_reason(reply), "stop_sequence": reply.stop_sequence}
    return [
        sse("head", "message_start", {"message": anthropic_message(body, number, reply, [], 1)}),
        sse("head", "content_block_start", {"index": 0, "content_block": block}),
        sse("head", "ping", {}),
        *(sse("content", "content_block_delta", {"index": 0, "delta": delta}) for delta in deltas),
        sse("tail", "content_block_stop", {"index": 0}),
        sse("tail", "message_delta", {"delta": stop, "usage": {"output_tokens": reply.output_tokens}}),
        sse("tail", "message_stop", {}),
    ]


def anthropic_stream_error() -> Event:
    return sse("tail", "error", {"error": {"type": "overloaded_error", "message": STREAM_ERROR_MESSAGE}})
