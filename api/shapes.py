"""The shapes of the structured request fields (messages, tools, tool_choice, stop, stream_options).

Plain pydantic models (ninja.Schema would drop unknown keys): unknown keys inside a message, a tool or a content part
pass through, as OpenAI allows. Unions are tagged by the JSON type of the value (or a part's `type`), so a failure
yields one error whose location names the field; the tags themselves are removed from that location (see UNION_TAGS).
"""

from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictStr, Tag

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_STOP_SEQUENCES = 4

UNION_TAGS = frozenset({"<string>", "<array>", "<object>", "<null>", "<text>", "<other>", "<function>", "<custom>"})


def json_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "<string>"
    if isinstance(value, list):
        return "<array>"
    if isinstance(value, dict):
        return "<object>"
    if value is None:
        return "<null>"
    return None


def one_of(expected: str, picker: Callable[[Any], str | None] = json_kind, **members: Any) -> Any:
    """A union picked by `picker` (by default the value's JSON type); a value that fits none gets one clear error."""
    choices = tuple(Annotated[member, Tag(f"<{name}>")] for name, member in members.items())
    picked = Discriminator(picker, custom_error_type="invalid_type", custom_error_message=f"expected {expected}")
    return Annotated[Union[choices], picked]  # noqa: UP007 (a tuple of members)


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


# Content parts: any object with a string `type`; a text part needs its string `text`.


class TextPart(Shape):
    type: Literal["text"]
    text: StrictStr


class OtherPart(Shape):
    type: StrictStr


def _part_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return "<text>" if value.get("type") == "text" else "<other>"


ContentPart = one_of("an object with a string 'type'", _part_kind, text=TextPart, other=OtherPart)
Content = one_of("a string, an array of content parts, or null", string=StrictStr, array=list[ContentPart], null=None)


# Messages.


class FunctionCall(Shape):
    name: StrictStr
    arguments: StrictStr


class ToolCall(Shape):
    id: StrictStr
    type: StrictStr
    function: FunctionCall | None = None


class Message(Shape):
    role: Literal[ROLES]
    content: Content = None
    name: StrictStr | None = None
    tool_call_id: StrictStr | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None


def message_problem(index: int, message: dict[str, Any]) -> tuple[str, str] | None:
    """The rules between fields of one (already type-checked) message, as (param, message)."""
    role = message["role"]
    where = f"messages.[{index}]"
    if message.get("content") is None and not (
        role == "assistant" and (message.get("tool_calls") or message.get("function_call"))
    ):
        return f"{where}.content", (
            f"Missing required parameter: '{where}.content' (a string or an array of content parts); "
            "only an assistant message with 'tool_calls' or 'function_call' may omit it."
        )
    if role == "tool" and message.get("tool_call_id") is None:
        return f"{where}.tool_call_id", f"Missing required parameter: '{where}.tool_call_id' (role 'tool')."
    if role == "function" and message.get("name") is None:
        return f"{where}.name", f"Missing required parameter: '{where}.name' (role 'function')."
    for position, call in enumerate(message.get("tool_calls") or ()):
        if call["type"] == "function" and call.get("function") is None:
            param = f"{where}.tool_calls.[{position}].function"
            return param, f"Missing required parameter: '{param}' (a tool call of type 'function')."
    return None


# Tools and tool_choice.


class FunctionDefinition(Shape):
    name: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class FunctionTool(Shape):
    type: Literal["function"]
    function: FunctionDefinition


class CustomDefinition(Shape):
    name: StrictStr = Field(min_length=1)


class CustomTool(Shape):
    type: Literal["custom"]
    custom: CustomDefinition


def _typed_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return "<custom>" if value.get("type") == "custom" else "<function>"


Tool = one_of(
    "an object with 'type': 'function' and a 'function'", _typed_kind, function=FunctionTool, custom=CustomTool
)


class NamedFunction(Shape):
    name: StrictStr


class FunctionChoice(Shape):
    type: Literal["function"]
    function: NamedFunction


class CustomChoice(Shape):
    type: Literal["custom"]
    custom: NamedFunction


ToolChoiceObject = one_of("an object naming a function", _typed_kind, function=FunctionChoice, custom=CustomChoice)
ToolChoice = one_of(
    "'none', 'auto', 'required' or an object naming a function",
    string=Literal["none", "auto", "required"],
    object=ToolChoiceObject,
    null=None,
)


# stop and stream_options.

Stop = one_of(
    f"a string, an array of up to {MAX_STOP_SEQUENCES} strings, or null",
    string=StrictStr,
    array=Annotated[list[StrictStr], Field(max_length=MAX_STOP_SEQUENCES)],
    null=None,
)


class StreamOptions(Shape):
    include_usage: StrictBool | None = None
    include_obfuscation: StrictBool | None = None
