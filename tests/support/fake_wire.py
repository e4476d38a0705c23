"""Deterministic replies of the fake provider, rendered in the OpenAI and Anthropic wire formats.

Pure functions of the request body: `fake_provider` serves them. A stream is a list of `Event`s whose kind is
"head" (before the content), "content" (one text or argument piece) or "tail" (finish, usage, [DONE]), so that
faults can cut a stream after a number of content events.
"""

import re
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import orjson

TOOL_ARGUMENTS = '{"location": "Paris"}'
TOOL_INPUT = {"location": "Paris"}
STREAM_ERROR_MESSAGE = "fake mid-stream error"
BIG_DELTA_CHARACTER = "A"
# The OpenAI side serves every id that starts with "fake-" and these (reasoning ids for the max_tokens contract).
OPENAI_SERVED_IDS = ("gpt-4o", "gpt-4o-mini", "o1", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano")
MODELS = {
    "object": "list",
    "data": [
        {"id": model, "object": "model", "created": 0, "owned_by": "fake"}
        for model in ("fake-model", *OPENAI_SERVED_IDS)
    ],
}
# Top-level fields of Anthropic's Messages API (https://docs.anthropic.com/en/api/messages); others are refused.
ANTHROPIC_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k",
        "metadata", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_config",
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

EventKind = Literal["head", "content", "tail"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: bytes


@dataclass(frozen=True)
class Reply:
    text: str
    tool: str | None
    reason: Literal["stop", "length", "stop_sequence", "tool"]
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int


def word_count(text: str) -> int:
    return len(text.split())


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def reply_text(said: str) -> str:
    repeat = re.fullmatch(r"REPEAT (\d+)\s*", said)
    if repeat:
        return " ".join(f"w{index}" for index in range(1, int(repeat.group(1)) + 1))
    return f"Hello! You said: {said}"


def limit_of(*values: Any) -> int | None:
    limits = [value for value in values if isinstance(value, int) and not isinstance(value, bool)]
    return min(limits) if limits else None


def finish(text: str, stops: Any, limit: int | None, input_tokens: int) -> Reply:
    if isinstance(stops, str):
        stops = [stops]
    found = [(text.find(stop), stop) for stop in stops or [] if isinstance(stop, str) and stop and stop in text]
    stop_sequence = min(found)[1] if found else None
    if stop_sequence is not None:
        text = text[: text.find(stop_sequence)]
    reason: Any = "stop_sequence" if stop_sequence else "stop"
    if limit is not None and word_count(text) > limit:
        ends = [match.end() for match in re.finditer(r"\S+", text)]
        text, reason, stop_sequence = (text[: ends[limit - 1]] if limit > 0 else ""), "length", None
    return Reply(text, None, reason, stop_sequence, max(input_tokens, 1), word_count(text))


def tool_call(name: str, input_tokens: int) -> Reply:
    return Reply(TOOL_ARGUMENTS, name, "tool", None, max(input_tokens, 1), word_count(TOOL_ARGUMENTS))


def pieces(text: str, count: int | None) -> list[str]:
    if count:
        size, extra = divmod(len(text), count)
        bounds = [index * size + min(index, extra) for index in range(count + 1)]
        return [text[start:end] for start, end in pairwise(bounds)]
    words = re.findall(r"\S+\s*", text)
    lead = text[: len(text) - len(text.lstrip())]
    if words and lead:
        words[0] = lead + words[0]
    return words or ([text] if text else [])


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


# Prompt caching: a prompt that says CACHE is half read from the provider's cache (and, on Anthropic's side, a
# quarter written to it), reported the way each API reports it
# (https://platform.openai.com/docs/guides/prompt-caching, https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).


def says_cache(body: dict) -> bool:
    messages = [message for message in body.get("messages") or [] if isinstance(message, dict)]
    return any("CACHE" in block_text(message.get("content")) for message in messages)


def with_openai_cache(body: dict, usage: dict) -> dict:
    """OpenAI counts cached tokens inside prompt_tokens and names them in prompt_tokens_details."""
    if not says_cache(body):
        return usage
    return {**usage, "prompt_tokens_details": {"cached_tokens": usage["prompt_tokens"] // 2, "audio_tokens": 0}}


def with_anthropic_cache(body: dict, usage: dict) -> dict:
    """Anthropic's input_tokens leaves out the tokens read from and written to the cache."""
    if not says_cache(body):
        return usage
    read, written = usage["input_tokens"] // 2, usage["input_tokens"] // 4
    return {**usage, "input_tokens": usage["input_tokens"] - read - written, "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written}  # fmt: skip


# OpenAI Chat Completions


def openai_serves(model: Any) -> bool:
    return isinstance(model, str) and (model.startswith("fake-") or model in OPENAI_SERVED_IDS)


def openai_reasoning_model(model: str) -> bool:
    """o-series and gpt-5 ids, which refuse max_tokens (https://platform.openai.com/docs/guides/reasoning)."""
    return bool(re.match(r"o\d", model)) or (model.startswith("gpt-5") and not model.startswith("gpt-5-chat"))


def openai_refusal(body: dict) -> tuple[int, dict] | None:
    """The 4xx the real OpenAI API answers to this body, with OpenAI's exact error body, or None."""
    model = body.get("model")
    if not openai_serves(model):
        message = f"The model `{model}` does not exist or you do not have access to it."
        return 404, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                               "code": "model_not_found"}}  # fmt: skip
    if body.get("max_tokens") is not None and openai_reasoning_model(model):
        message = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                   "Use 'max_completion_tokens' instead.")  # fmt: skip
        return 400, {"error": {"message": message, "type": "invalid_request_error", "param": "max_tokens",
                               "code": "unsupported_parameter"}}  # fmt: skip
    return None


def openai_error(status: int, message: str | None = None, kind: str = "server_error") -> dict:
    message = message or f"fake provider error {status}"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def openai_plan(body: dict) -> Reply:
    messages = [message for message in body.get("messages") or [] if isinstance(message, dict)]
    input_tokens = sum(word_count(content_text(message.get("content"))) for message in messages)
    last = messages[-1] if messages else {}
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    choice = body.get("tool_choice")
    if tools and choice != "none" and last.get("role") != "tool":
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        return tool_call(named or tools[0].get("function", {}).get("name", "tool"), input_tokens)
    if last.get("role") == "tool":
        text = "Tool said: " + content_text(last.get("content"))
    else:
        users = [message for message in messages if message.get("role") == "user"]
        text = reply_text(content_text(users[-1].get("content")) if users else "")
    limit = limit_of(body.get("max_tokens"), body.get("max_completion_tokens"))
    return finish(text, body.get("stop"), limit, input_tokens)


def openai_finish_reason(reply: Reply) -> str:
    return {"tool": "tool_calls", "length": "length"}.get(reply.reason, "stop")


def openai_usage(reply: Reply) -> dict:
    total = reply.input_tokens + reply.output_tokens
    return {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens, "total_tokens": total}


def choices_of(body: dict) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def openai_json(body: dict, number: int) -> dict:
    reply = openai_plan(body)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool:
        function = {"name": reply.tool, "arguments": reply.text}
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_fake_1", "type": "function", "function": function}
        ]}  # fmt: skip
    reason = openai_finish_reason(reply)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": index, "message": message, "logprobs": None, "finish_reason": reason}
            for index in range(choices_of(body))
        ],
        "usage": with_openai_cache(body, openai_usage(reply)),
    }


def openai_stream(body: dict, number: int, stream_chunks: int | None) -> list[Event]:
    reply = openai_plan(body)
    base = {"id": f"chatcmpl-fake-{number}", "object": "chat.completion.chunk", "created": int(time.time())}
    base |= {"model": body.get("model"), "system_fingerprint": "fp_fake"}
    indexes = range(choices_of(body))

    def chunk(kind: EventKind, delta: dict, reason: str | None = None) -> Event:
        choices = [{"index": i, "delta": delta, "logprobs": None, "finish_reason": reason} for i in indexes]
        return Event(kind, b"data: " + dumps({**base, "choices": choices}) + b"\n\n")

    if reply.tool:
        call = {"index": 0, "id": "call_fake_1", "type": "function", "function": {"name": reply.tool, "arguments": ""}}
        events = [chunk("head", {"role": "assistant", "content": None, "tool_calls": [call]})]
        events += [
            chunk("content", {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in pieces(reply.text, stream_chunks or 3)
        ]
    else:
        events = [chunk("head", {"role": "assistant", "content": ""})]
        events += [chunk("content", {"content": piece}) for piece in pieces(reply.text, stream_chunks)]
    events.append(chunk("tail", {}, openai_finish_reason(reply)))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {**base, "choices": [], "usage": with_openai_cache(body, openai_usage(reply))}
        events.append(Event("tail", b"data: " + dumps(usage) + b"\n\n"))
    events.append(Event("tail", b"data: [DONE]\n\n"))
    return events


def openai_big_delta(body: dict, number: int, size: int) -> Event:
    """One content chunk of `size` characters in one SSE line (as a base64 image or audio delta is)."""
    chunk = {"id": f"chatcmpl-fake-{number}", "object": "chat.completion.chunk", "created": int(time.time()),
             "model": body.get("model"), "system_fingerprint": "fp_fake",
             "choices": [{"index": 0, "delta": {"content": BIG_DELTA_CHARACTER * size}, "logprobs": None,
                          "finish_reason": None}]}  # fmt: skip
    return Event("content", b"data: " + dumps(chunk) + b"\n\n")


def openai_stream_error() -> Event:
    return Event("tail", b"data: " + dumps(openai_error(500, STREAM_ERROR_MESSAGE)) + b"\n\n")


# Anthropic Messages


def anthropic_refusal(body: dict) -> tuple[int, dict] | None:
    """The 400 the real Anthropic API answers to this body (unknown top-level field, missing max_tokens), or None."""
    unknown = sorted(set(body) - ANTHROPIC_FIELDS)
    if unknown:
        return 400, anthropic_error(400, f"{unknown[0]}: Extra inputs are not permitted")
    if "max_tokens" not in body:
        return 400, anthropic_error(400, "max_tokens: Field required")
    return None


def anthropic_error(status: int, message: str | None = None, kind: str | None = None) -> dict:
    kind = kind or ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or f"fake provider error {status}"}}


def block_text(content: Any) -> str:
    if isinstance(content, list):
        texts = [block_text(block.get("content")) for block in content if isinstance(block, dict)
                 and block.get("type") == "tool_result"]  # fmt: skip
        return " ".join(filter(None, [content_text(content), *texts]))
    return content_text(content)


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
