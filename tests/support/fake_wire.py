"""Deterministic replies of the fake provider: the rules every wire format shares, and OpenAI Chat Completions.

The other formats build on these rules: fake_embeddings.py, fake_responses.py, fake_anthropic.py.
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
EMBEDDING_MODELS = ("fake-embedding-3-small", "text-embedding-3-small", "text-embedding-3-large")  # fake_embeddings
MODELS = {
    "object": "list",
    "data": [
        {"id": model, "object": "model", "created": 0, "owned_by": "fake"}
        for model in ("fake-model", *OPENAI_SERVED_IDS, *EMBEDDING_MODELS)
    ],
}
EventKind = Literal["head", "content", "tail"]
# Context windows: an id containing SMALL_CONTEXT_MARKER ("fake-model-small-context", "claude-x-small-context") has a
# window of SMALL_CONTEXT_WINDOW tokens, a prompt counting characters / 4 (rounded up), so a test fills it with a
# prompt of a few thousand characters. Other ids have no window.
SMALL_CONTEXT_MARKER = "-small-context"
SMALL_CONTEXT_WINDOW = 1000


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


def context_window(model: Any) -> int | None:
    return SMALL_CONTEXT_WINDOW if isinstance(model, str) and SMALL_CONTEXT_MARKER in model else None


def prompt_tokens(*texts: str) -> int:
    """What a context window counts: characters / 4, rounded up (about what a BPE tokenizer makes of English)."""
    return -(-sum(len(text) for text in texts) // 4)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


# Prompt caching: a prompt that says CACHE is half read from the provider's cache (and, on Anthropic's side, a
# quarter written to it: fake_anthropic.py), reported the way each API reports it
# (https://platform.openai.com/docs/guides/prompt-caching, https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).


def block_text(content: Any) -> str:
    """The text of a message's content, tool results included (Anthropic's tool_result blocks)."""
    if isinstance(content, list):
        texts = [block_text(block.get("content")) for block in content if isinstance(block, dict)
                 and block.get("type") == "tool_result"]  # fmt: skip
        return " ".join(filter(None, [content_text(content), *texts]))
    return content_text(content)


def says_cache(body: dict) -> bool:
    messages = [message for message in body.get("messages") or [] if isinstance(message, dict)]
    return any("CACHE" in block_text(message.get("content")) for message in messages)


def with_openai_cache(body: dict, usage: dict) -> dict:
    """OpenAI counts cached tokens inside prompt_tokens and names them in prompt_tokens_details."""
    if not says_cache(body):
        return usage
    return {**usage, "prompt_tokens_details": {"cached_tokens": usage["prompt_tokens"] // 2, "audio_tokens": 0}}


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
    window = context_window(model)
    messages = [message for message in body.get("messages") or [] if isinstance(message, dict)]
    used = prompt_tokens(*(content_text(message.get("content")) for message in messages))
    if window is not None and used > window:
        message = (f"This model's maximum context length is {window} tokens. However, your messages resulted in "
                   f"{used} tokens. Please reduce the length of the messages.")  # fmt: skip
        return 400, {"error": {"message": message, "type": "invalid_request_error", "param": "messages",
                               "code": "context_length_exceeded"}}  # fmt: skip
    return None


def openai_error(status: int, message: str | None = None, kind: str = "server_error") -> dict:
    """OpenAI's error body; a 429 is typed as OpenAI types a rate limit ("requests", code "rate_limit_exceeded")."""
    message = message or f"fake provider error {status}"
    if status == 429 and kind == "server_error":
        return {"error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
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
