"""OpenAI's Responses API wire format (https://platform.openai.com/docs/api-reference/responses), as the fake
provider serves it at `POST /v1/responses`, non-streaming and streaming.

- Body: `input` (a string, or a list of items: messages with a string or `input_text` parts, `function_call` and
  `function_call_output` items, any other typed item), `instructions`, `max_output_tokens`, `tools` (function tools),
  `tool_choice`, `store`, `previous_response_id`, `stream`. Refusals, with OpenAI's error body: an unknown model is a
  400 "The requested model 'x' does not exist." (`model_not_found`); an unknown field a 400 "Unknown parameter: 'x'."
  (`unknown_parameter`); `max_output_tokens` below 16 a 400 "Invalid 'max_output_tokens': integer below minimum
  value. Expected a value >= 16, but got N instead." (`integer_below_min_value`); a missing `input` a 400
  `missing_required_parameter`.
- Reply: the chat side's rules (a function tool is called when tools are sent, unless tool_choice is "none" or the
  last input item is a `function_call_output`, answered "Tool said: ..."); a reasoning model (o-series, gpt-5) puts
  a `reasoning` item first and counts REASONING_TOKENS in `output_tokens_details.reasoning_tokens`. Hitting
  `max_output_tokens` gives status "incomplete" with `incomplete_details.reason` "max_output_tokens".
- Usage: `input_tokens` (with `input_tokens_details.cached_tokens`: half when the input says CACHE), `output_tokens`
  (with `output_tokens_details.reasoning_tokens`), `total_tokens`, in the response object.
- State: like the real API, a response is stored unless `store` is false; `previous_response_id` must name a stored
  response (its tokens count as input) or it is a 400 "Previous response with id 'x' not found."
  (`previous_response_not_found`, param `previous_response_id`). The store is in memory, per fake provider.
- Context window: an input (instructions and input items) over the model's window (fake_wire.context_window: ids
  containing "-small-context") is a 400 "Your input exceeds the context window of this model. Please adjust your
  input and try again." (`context_length_exceeded`, param `input`), as OpenAI answers it
  (https://platform.openai.com/docs/guides/error-codes).
- Stream (https://platform.openai.com/docs/api-reference/responses-streaming): typed events `response.created`,
  `response.in_progress`, `response.output_item.added`, `response.content_part.added`,
  `response.output_text.delta`…, `response.output_text.done`, `response.content_part.done`,
  `response.output_item.done` (for a function call: `response.function_call_arguments.delta`… and `.done`), then
  `response.completed` (or `response.incomplete`), each with a `sequence_number` from 0. A failing stream sends an
  `error` event, then `response.failed` whose response carries `error: {code, message}`.
"""

import time
from typing import Any

from tests.support.fake_wire import (
    BIG_DELTA_CHARACTER,
    STREAM_ERROR_MESSAGE,
    TOOL_ARGUMENTS,
    Event,
    EventKind,
    Reply,
    context_window,
    dumps,
    finish,
    openai_reasoning_model,
    openai_serves,
    pieces,
    prompt_tokens,
    reply_text,
    tool_call,
    word_count,
)

# The create parameters of openai/types/responses/response_create_params.py (and `stream`); others are refused.
RESPONSES_FIELDS = frozenset(
    {
        "access_programs", "background", "context_management", "conversation", "image", "include", "input",
        "instructions", "max_output_tokens", "max_tool_calls", "metadata", "model", "moderation",
        "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "stream",
        "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user",
    }
)  # fmt: skip
MIN_OUTPUT_TOKENS = 16
CONTEXT_EXCEEDED = "Your input exceeds the context window of this model. Please adjust your input and try again."
REASONING_TOKENS = 8
TEXT_PART_TYPES = ("input_text", "output_text", "text")


def responses_error(message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def item_text(item: dict) -> str:
    if item.get("type") == "function_call_output":
        output = item.get("output")
        return output if isinstance(output, str) else parts_text(output)
    return parts_text(item.get("content"))


def parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") in TEXT_PART_TYPES]
    return " ".join(text for text in texts if isinstance(text, str))


def input_items(body: dict) -> list[dict]:
    value = body.get("input")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [item for item in value or [] if isinstance(item, dict)]


class ResponsesApi:
    """The Responses endpoint with its store of responses (in memory, like the real API's `store: true`)."""

    def __init__(self) -> None:
        self.stored: dict[str, dict] = {}

    def reset(self) -> None:
        self.stored.clear()

    def refusal(self, body: dict) -> tuple[int, dict] | None:
        """The 4xx the real Responses API answers to this body, with OpenAI's error body, or None."""
        model = body.get("model")
        if not openai_serves(model):
            return 400, responses_error(f"The requested model '{model}' does not exist.", "model", "model_not_found")
        unknown = sorted(set(body) - RESPONSES_FIELDS)
        if unknown:
            return 400, responses_error(f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
        value = body.get("input")
        if value is None and not body.get("previous_response_id"):
            message = "Missing required parameter: 'input'."
            return 400, responses_error(message, "input", "missing_required_parameter")
        if value is not None and not isinstance(value, str | list):
            return 400, responses_error("Invalid type for 'input': expected one of a string or array of input items.",
                                        "input", "invalid_type")  # fmt: skip
        for index, item in enumerate(value if isinstance(value, list) else []):
            if not isinstance(item, dict) or not (isinstance(item.get("type"), str) or "role" in item):
                return 400, responses_error(f"Invalid value for 'input[{index}]'.", f"input[{index}]", "invalid_value")
        limit = body.get("max_output_tokens")
        if isinstance(limit, int) and limit < MIN_OUTPUT_TOKENS:
            message = (f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                       f"{MIN_OUTPUT_TOKENS}, but got {limit} instead.")  # fmt: skip
            return 400, responses_error(message, "max_output_tokens", "integer_below_min_value")
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.stored:
            message = f"Previous response with id '{previous}' not found."
            return 400, responses_error(message, "previous_response_id", "previous_response_not_found")
        window = context_window(model)
        texts = [str(body.get("instructions") or ""), *(item_text(item) for item in input_items(body))]
        if window is not None and prompt_tokens(*texts) > window:
            return 400, responses_error(CONTEXT_EXCEEDED, "input", "context_length_exceeded")
        return None

    def plan(self, body: dict) -> Reply:
        items = input_items(body)
        previous = self.stored.get(body.get("previous_response_id") or "")
        earlier = previous["usage"]["total_tokens"] if previous else 0
        input_tokens = (
            earlier
            + word_count(str(body.get("instructions") or ""))
            + sum(word_count(item_text(item)) for item in items)
        )
        last = items[-1] if items else {}
        tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict) and tool.get("type") == "function"]
        choice = body.get("tool_choice")
        if last.get("type") == "function_call_output":
            text = "Tool said: " + item_text(last)
        elif tools and choice != "none":
            named = choice.get("name") if isinstance(choice, dict) else None
            return tool_call(named or tools[0].get("name", "tool"), input_tokens)
        else:
            users = [item for item in items if item.get("role") == "user"]
            text = reply_text(item_text(users[-1]) if users else "")
        limit = body.get("max_output_tokens")
        if isinstance(limit, int) and openai_reasoning_model(body["model"]):
            limit -= REASONING_TOKENS
        return finish(text, None, limit, input_tokens)

    def usage(self, body: dict, reply: Reply) -> dict:
        reasoning = REASONING_TOKENS if openai_reasoning_model(body["model"]) else 0
        says_cache = "CACHE" in " ".join(item_text(item) for item in input_items(body))
        cached = reply.input_tokens // 2 if says_cache else 0
        output = reply.output_tokens + reasoning
        return {
            "input_tokens": reply.input_tokens,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": reply.input_tokens + output,
        }

    def output_items(self, body: dict, number: int, reply: Reply) -> list[dict]:
        items: list[dict] = []
        if openai_reasoning_model(body["model"]):
            items.append({"type": "reasoning", "id": f"rs_fake_{number}", "summary": []})
        status = "incomplete" if reply.reason == "length" else "completed"
        if reply.tool:
            items.append({"type": "function_call", "id": f"fc_fake_{number}", "call_id": "call_fake_1",
                          "name": reply.tool, "arguments": reply.text, "status": "completed"})  # fmt: skip
        else:
            part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
            items.append({"type": "message", "id": f"msg_fake_{number}", "status": status, "role": "assistant",
                          "content": [part]})  # fmt: skip
        return items

    def response(self, body: dict, number: int, status: str, output: list, usage: dict | None) -> dict:
        tool_choice = body.get("tool_choice", "auto")
        return {
            "id": f"resp_fake_{number}", "object": "response", "created_at": int(time.time()), "status": status,
            "background": False, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"), "model": body.get("model"), "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None}, "service_tier": "default",
            "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": tool_choice,
            "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"), "usage": usage, "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }  # fmt: skip

    def finished(self, body: dict, number: int) -> dict:
        """The final response object (stored unless `store` is false)."""
        reply = self.plan(body)
        status = "incomplete" if reply.reason == "length" else "completed"
        final = self.response(body, number, status, self.output_items(body, number, reply), self.usage(body, reply))
        if body.get("store", True) is not False:
            self.stored[final["id"]] = final
        return final

    def json(self, body: dict, number: int) -> dict:
        return self.finished(body, number)

    def stream(self, body: dict, number: int, stream_chunks: int | None, big_line: int = 0) -> list[Event]:
        """The typed events; `big_line` > 0 adds a first text delta of that many characters in one SSE line."""
        reply = self.plan(body)
        final = self.finished(body, number)
        events = Sequence()
        started = self.response(body, number, "in_progress", [], None)
        events.add("head", "response.created", response=started)
        events.add("head", "response.in_progress", response=started)
        for index, item in enumerate(final["output"]):
            if item["type"] == "reasoning":
                events.add("head", "response.output_item.added", output_index=index, item=item)
                events.add("head", "response.output_item.done", output_index=index, item=item)
            elif item["type"] == "function_call":
                events.function_call(index, item, pieces(reply.text, stream_chunks or 3))
            else:
                big = [BIG_DELTA_CHARACTER * big_line] if big_line else []
                events.message(index, item, [*big, *pieces(reply.text, stream_chunks)])
        events.add("tail", "response.incomplete" if final["status"] == "incomplete" else "response.completed",
                   response=final)  # fmt: skip
        return events.events

    def stream_error(self, body: dict, number: int, sent: int) -> list[Event]:
        """What a stream failing after `sent` events ends with: an `error` event, then `response.failed`."""
        failed = self.response(body, number, "failed", [], None)
        failed["error"] = {"code": "server_error", "message": STREAM_ERROR_MESSAGE}
        error = {"code": "server_error", "message": STREAM_ERROR_MESSAGE, "param": None, "sequence_number": sent}
        failure = {"response": failed, "sequence_number": sent + 1}
        return [sse("tail", "error", error), sse("tail", "response.failed", failure)]


def sse(kind: EventKind, name: str, data: dict) -> Event:
    return Event(kind, b"event: " + name.encode() + b"\ndata: " + dumps({"type": name, **data}) + b"\n\n")


class Sequence:
    """Typed Responses events numbered from 0, as OpenAI numbers them."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, kind: EventKind, event: str, **data: Any) -> None:
        self.events.append(sse(kind, event, {**data, "sequence_number": len(self.events)}))

    def message(self, index: int, item: dict, texts: list[str]) -> None:
        where = {"item_id": item["id"], "output_index": index}
        part = item["content"][0]
        self.add("head", "response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "content": []})  # fmt: skip
        self.add("head", "response.content_part.added", **where, content_index=0, part={**part, "text": ""})
        for text in texts:
            self.add("content", "response.output_text.delta", **where, content_index=0, delta=text, logprobs=[])
        self.add("tail", "response.output_text.done", **where, content_index=0, text=part["text"], logprobs=[])
        self.add("tail", "response.content_part.done", **where, content_index=0, part=part)
        self.add("tail", "response.output_item.done", output_index=index, item=item)

    def function_call(self, index: int, item: dict, arguments: list[str]) -> None:
        where = {"item_id": item["id"], "output_index": index}
        self.add("head", "response.output_item.added", output_index=index,
                 item={**item, "arguments": "", "status": "in_progress"})  # fmt: skip
        for piece in arguments:
            self.add("content", "response.function_call_arguments.delta", **where, delta=piece)
        self.add("tail", "response.function_call_arguments.done", **where, name=item["name"], arguments=TOOL_ARGUMENTS)
        self.add("tail", "response.output_item.done", output_index=index, item=item)
