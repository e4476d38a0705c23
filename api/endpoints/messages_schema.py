"""The Anthropic Messages request (https://docs.anthropic.com/en/api/messages): what the gateway checks, what it sends.

Checked: model, max_tokens (required, >= 1), messages (roles user and assistant; content a string or blocks: text,
image, document, tool_use, tool_result, thinking and any other typed block), system (a string or text blocks),
stream (a strict boolean), temperature and top_p (0-1), top_k, stop_sequences, tools (custom tools with a name and
an input_schema, or typed server tools), tool_choice, metadata and thinking. A 400 names the field the way
Anthropic's do ("messages.0.content: …"). Unknown keys inside a block, a tool or a message pass (cache_control,
citations, …). LiteLLM's control fields are refused (api.schemas); other top-level fields go to Anthropic models as
sent, which judge them (api/endpoints/messages.py decides for translated models).
"""

from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from api.errors import GatewayError, invalid_request
from api.schemas import MAX_INT, OBJECT_ERRORS, load_json_object, refuse_control_fields
from api.shapes import one_of
from routing.resolver import MESSAGE_OVERHEAD_TOKENS, NON_TEXT_PART_TOKENS

Probability = Annotated[StrictFloat, Field(ge=0, le=1)]
Name = Annotated[StrictStr, Field(min_length=1)]


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


def typed(value: Any, known: frozenset[str]) -> str | None:
    """A union member picked by an object's `type` (the member "<other>" for types not listed)."""
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    return f"<{kind}>" if kind in known else "<other>"


# Content blocks.


class TextBlock(Shape):
    type: Literal["text"]
    text: StrictStr


class SourcedBlock(Shape):  # image, document
    type: StrictStr
    source: dict[str, Any]


class ToolUseBlock(Shape):
    type: Literal["tool_use"]
    id: StrictStr
    name: Name
    input: dict[str, Any]


class ThinkingBlock(Shape):
    type: Literal["thinking"]
    thinking: StrictStr


class OtherBlock(Shape):
    type: StrictStr


BLOCK = "an object with a string 'type'"
RESULT_BLOCK_TYPES = frozenset({"text", "image", "document"})
ResultBlock = one_of(BLOCK, lambda value: typed(value, RESULT_BLOCK_TYPES), text=TextBlock, image=SourcedBlock,
                     document=SourcedBlock, other=OtherBlock)  # fmt: skip


class ToolResultBlock(Shape):
    type: Literal["tool_result"]
    tool_use_id: StrictStr
    content: one_of("a string or an array of content blocks", string=StrictStr, array=list[ResultBlock],
                    null=None) = None  # fmt: skip
    is_error: StrictBool | None = None


BLOCK_TYPES = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking"})
Block = one_of(BLOCK, lambda value: typed(value, BLOCK_TYPES), text=TextBlock, image=SourcedBlock,
               document=SourcedBlock, tool_use=ToolUseBlock, tool_result=ToolResultBlock, thinking=ThinkingBlock,
               other=OtherBlock)  # fmt: skip


class InputMessage(Shape):
    role: Literal["user", "assistant"]
    content: one_of("a string or an array of content blocks", string=StrictStr, array=list[Block])


class SystemBlock(Shape):
    type: Literal["text"]
    text: StrictStr


# Tools, tool_choice, metadata, thinking.


class CustomTool(Shape):
    type: Literal["custom"] | None = None
    name: Name
    input_schema: dict[str, Any]
    description: StrictStr | None = None


class ServerTool(Shape):  # web_search_…, bash_…, text_editor_…: Anthropic knows their shapes
    type: StrictStr
    name: StrictStr | None = None


def _tool_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return "<custom>" if value.get("type") in (None, "custom") else "<server>"


Tool = one_of("an object with a 'name' and an 'input_schema'", _tool_kind, custom=CustomTool, server=ServerTool)


class ToolChoiceMode(Shape):
    type: Literal["auto", "any", "tool", "none"]  # "tool" is ToolChoiceTool's: listed for the error message
    disable_parallel_tool_use: StrictBool | None = None


class ToolChoiceTool(Shape):
    type: Literal["tool"]
    name: Name
    disable_parallel_tool_use: StrictBool | None = None


ToolChoice = one_of("an object with a 'type'", lambda value: typed(value, frozenset({"tool"})), tool=ToolChoiceTool,
                    other=ToolChoiceMode)  # fmt: skip


class Metadata(Shape):
    user_id: StrictStr | None = None


class ThinkingEnabled(Shape):
    type: Literal["enabled"]
    budget_tokens: Annotated[StrictInt, Field(ge=1, le=MAX_INT)]


class ThinkingOther(Shape):  # disabled, adaptive, …
    type: StrictStr


Thinking = one_of("an object with a 'type'", lambda value: typed(value, frozenset({"enabled"})),
                  enabled=ThinkingEnabled, other=ThinkingOther)  # fmt: skip


class MessagesRequestBody(BaseModel):
    """The checked fields; other top-level fields pass to Anthropic models (see the module docstring)."""

    model_config = ConfigDict(extra="allow")

    model: Name
    max_tokens: Annotated[StrictInt, Field(ge=1, le=MAX_INT)]
    messages: list[InputMessage] = Field(min_length=1)
    system: one_of("a string or an array of text blocks", string=StrictStr, array=list[SystemBlock],
                   null=None) = None  # fmt: skip
    stream: StrictBool | None = None
    temperature: Probability | None = None
    top_p: Probability | None = None
    top_k: Annotated[StrictInt, Field(ge=0, le=MAX_INT)] | None = None
    stop_sequences: list[StrictStr] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    metadata: Metadata | None = None
    thinking: Thinking | None = None


CORE_FIELDS = frozenset({"model", "messages", "stream"})


class MessagesRequest:
    """A parsed Messages request. `params`: every other top-level field sent (max_tokens capped by the resolver)."""

    __slots__ = ("anthropic_beta", "anthropic_version", "extra_body", "messages", "model", "params", "stream",
                 "system", "tools")  # fmt: skip

    def __init__(self, validated: MessagesRequestBody, raw: dict[str, Any], request: HttpRequest | None) -> None:
        self.model = validated.model
        self.stream = bool(validated.stream)
        self.messages: list[dict[str, Any]] = raw["messages"]
        self.system: str | list | None = raw.get("system")
        self.tools: list | None = raw.get("tools")
        self.params: dict[str, Any] = {name: value for name, value in raw.items()
                                       if name not in CORE_FIELDS and value is not None}  # fmt: skip
        self.extra_body: dict[str, Any] = {}  # the resolver's pass-through check is Chat Completions'
        headers = request.headers if request is not None else {}
        self.anthropic_version: str | None = headers.get("anthropic-version")
        self.anthropic_beta: str | None = headers.get("anthropic-beta")


def _path(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location if not (isinstance(part, str) and part.startswith("<")))


def validation_error(exc: ValidationError) -> GatewayError:
    """The deepest problem, as Anthropic words it: "messages.0.content.1.text: Input should be a valid string"."""
    first = max(exc.errors(include_url=False), key=lambda error: len(_path(tuple(error["loc"])).split(".")))
    path = _path(tuple(first["loc"]))
    message = "Input should be an object" if first["type"] in OBJECT_ERRORS else first["msg"]
    return invalid_request(f"{path}: {message}", param=path or None)


def content_problem(messages: list[dict[str, Any]]) -> GatewayError | None:
    """Anthropic's rule: every message has content, except an optional final assistant message (a prefill)."""
    for index, message in enumerate(messages):
        final_assistant = index == len(messages) - 1 and message["role"] == "assistant"
        if not message["content"] and not final_assistant:
            path = f"messages.{index}.content"
            return invalid_request(f"{path}: all messages must have non-empty content except for the optional final "
                                   "assistant message", param=path)  # fmt: skip
    return None


def parse_messages_request(body: bytes, request: HttpRequest | None = None) -> MessagesRequest:
    raw = load_json_object(body)
    refuse_control_fields(raw)
    messages = raw.get("messages")
    if isinstance(messages, list) and len(messages) > settings.LLMPROXY_MAX_MESSAGES:
        raise invalid_request(f"messages: too many messages: {len(messages)} sent, at most "
                              f"{settings.LLMPROXY_MAX_MESSAGES} are accepted", param="messages")  # fmt: skip
    try:
        validated = MessagesRequestBody.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    problem = content_problem(messages)
    if problem is not None:
        raise problem
    return MessagesRequest(validated, raw, request)


# The prompt, cheaply (tokens-per-minute reservations) or as text (to estimate usage a provider did not report).


def block_texts(content: Any) -> tuple[list[str], int]:
    """The texts in a message's content (text, tool inputs and results, thinking) and how many other blocks."""
    if isinstance(content, str):
        return [content], 0
    texts, others = [], 0
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            texts.append(block.get("thinking") or "")
        elif kind == "tool_use":
            texts.append(str(block.get("input") or ""))
        elif kind == "tool_result":
            inner, more = block_texts(block.get("content"))
            texts += inner
            others += more
        else:
            others += 1
    return texts, others


def prompt_texts(request: MessagesRequest) -> tuple[list[str], int]:
    texts, others = block_texts(request.system)
    for message in request.messages:
        inner, more = block_texts(message.get("content"))
        texts += inner
        others += more
    if request.tools:
        texts.append(str(request.tools))  # tool definitions are part of the prompt
    return texts, others


def prompt_estimate(request: MessagesRequest) -> int:
    """Prompt tokens, cheaply: characters / 4, a flat figure per image or document, a little per message."""
    texts, others = prompt_texts(request)
    characters = sum(len(text) for text in texts)
    return characters // 4 + others * NON_TEXT_PART_TOKENS + MESSAGE_OVERHEAD_TOKENS * len(request.messages)
