"""The Responses API request (https://platform.openai.com/docs/api-reference/responses/create), as the gateway reads it.

Validated: `model`, `input` (a string, or a list of input items: messages with a role and a string or content parts,
`function_call` and `function_call_output` items, any other item with a string `type`), `stream` (a boolean),
`max_output_tokens` (16 or more: OpenAI's own minimum, which LiteLLM's OpenAI path would otherwise raise silently),
`temperature` (0 to 2), `top_p` (0 to 1), `tools`, `tool_choice`, `instructions`, `user`, `metadata` (up to 16 string
pairs), `text` and `reasoning` (objects, passed through), `include`, `store`, `parallel_tool_calls`.

Refused, with a 400 naming the field: state kept by the provider and shared by every key of the gateway (one provider
account), which one key could use to read another key's conversation: `previous_response_id`, `conversation`, an
`item_reference` input item; and `background: true` (its answer is fetched later from the provider's store, which the
gateway does not serve). LiteLLM control fields are refused as on every endpoint.
"""

from typing import Annotated, Any, Literal

import orjson
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from api.errors import GatewayError, invalid_request
from api.schemas import MAX_INT, load_json_object, refuse_control_fields, validation_error
from api.shapes import Shape, one_of

MIN_OUTPUT_TOKENS = 16  # OpenAI refuses less ("integer_below_min_value")
MAX_METADATA_PAIRS = 16
ROLES = ("user", "assistant", "system", "developer")
TEXT_PART_TYPES = frozenset({"input_text", "output_text"})
INPUT_SHAPES = "a string or an array of input items"
INPUT_SCHEMAS = [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]
STATE_ADVICE = "send the conversation so far as input items instead"
# Fields that reach the provider's stored state, which every key of the gateway shares: refused when set.
STATEFUL_FIELDS = {
    "previous_response_id": "responses stored by the provider are shared by every key of this gateway",
    "conversation": "conversations stored by the provider are shared by every key of this gateway",
}

# Fields LiteLLM's `aresponses` takes by name (sent to LiteLLM as keyword arguments, to the relay in the body).
# Other fields go to OpenAI-wire providers in the body and are refused for the others (routing.resolver).
NAMED_FIELDS = frozenset(
    {
        "include", "instructions", "max_output_tokens", "prompt", "metadata", "parallel_tool_calls", "reasoning",
        "store", "temperature", "text", "tool_choice", "tools", "top_p", "truncation", "user", "service_tier",
        "safety_identifier",
    }
)  # fmt: skip


class FunctionTool(Shape):
    type: Literal["function"]
    name: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class OtherTool(Shape):
    type: StrictStr


class NamedFunction(Shape):
    type: Literal["function"]
    name: StrictStr


def _by_type(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return "<function>" if value.get("type") == "function" else "<other>"


Tool = one_of("an object with a string 'type'", _by_type, function=FunctionTool, other=OtherTool)
ToolChoiceObject = one_of("an object with a string 'type'", _by_type, function=NamedFunction, other=OtherTool)
ToolChoice = one_of(
    "'none', 'auto', 'required' or an object naming a tool",
    string=Literal["none", "auto", "required"],
    object=ToolChoiceObject,
    null=None,
)
MetadataKey = Annotated[StrictStr, Field(max_length=64)]
MetadataValue = Annotated[StrictStr, Field(max_length=512)]


class ResponsesRequestBody(BaseModel):
    """The declared fields (others pass through); `input` is checked by input_problem, which names the item."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: Any = Field(default=None, description=INPUT_SHAPES, json_schema_extra={"anyOf": INPUT_SCHEMAS})
    stream: StrictBool | None = None
    max_output_tokens: int | None = Field(default=None, ge=MIN_OUTPUT_TOKENS, le=MAX_INT)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[Tool] | None = None
    tool_choice: ToolChoice = None
    instructions: StrictStr | None = None
    user: StrictStr | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = Field(default=None, max_length=MAX_METADATA_PAIRS)
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    include: list[StrictStr] | None = None
    store: StrictBool | None = None
    parallel_tool_calls: StrictBool | None = None
    background: StrictBool | None = None


VALIDATED_FIELDS = ("max_output_tokens", "temperature", "top_p", "user", "store", "parallel_tool_calls")
NOT_FORWARDED = frozenset({"model", "input", "stream", "background", *STATEFUL_FIELDS})


class ResponsesRequest:
    """A parsed Responses request: what the gateway decides on (params) and what it forwards (extra_body)."""

    __slots__ = ("extra_body", "input", "instructions", "model", "params", "stream")

    def __init__(self, validated: ResponsesRequestBody, raw: dict[str, Any]) -> None:
        self.model = validated.model
        self.stream = bool(validated.stream)
        self.input: str | list[Any] | None = raw.get("input")
        self.instructions = validated.instructions or ""
        self.params: dict[str, Any] = {
            name: raw[name] for name in NAMED_FIELDS if name not in VALIDATED_FIELDS and raw.get(name) is not None
        }
        self.params.update(
            {name: getattr(validated, name) for name in VALIDATED_FIELDS if getattr(validated, name) is not None}
        )
        self.extra_body: dict[str, Any] = {
            name: value for name, value in raw.items() if name not in NAMED_FIELDS and name not in NOT_FORWARDED
        }


def _text_problem(where: str, value: Any) -> tuple[str, str] | None:
    if isinstance(value, str):
        return None
    return where, f"Invalid value for '{where}': expected a string."


def content_problem(where: str, content: Any) -> tuple[str, str] | None:
    """A message's content: a string, or an array of parts (objects with a string `type`; text parts with text)."""
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return where, f"Invalid value for '{where}': expected a string or an array of content parts."
    for index, part in enumerate(content):
        place = f"{where}.[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            return place, f"Invalid value for '{place}': expected an object with a string 'type'."
        if part["type"] in TEXT_PART_TYPES:
            problem = _text_problem(f"{place}.text", part.get("text"))
            if problem:
                return problem
    return None


def item_problem(where: str, item: Any) -> tuple[str, str] | None:
    """One input item: a message (a role, no type or type "message"), or any object with a string `type`."""
    if not isinstance(item, dict):
        return where, f"Invalid value for '{where}': expected an input item (an object with a 'role' or a 'type')."
    kind = item.get("type", "message")
    if not isinstance(kind, str):
        return f"{where}.type", f"Invalid value for '{where}.type': expected a string."
    if kind == "message":
        if item.get("role") not in ROLES:
            return f"{where}.role", f"Invalid value for '{where}.role': expected one of {', '.join(ROLES)}."
        return content_problem(f"{where}.content", item.get("content"))
    if kind == "item_reference":
        return where, (f"'{where}' refers to an item stored by the provider: such items are shared by every key of "
                       f"this gateway, so references are not accepted; {STATE_ADVICE}.")  # fmt: skip
    if kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            problem = _text_problem(f"{where}.{name}", item.get(name))
            if problem:
                return problem
    if kind == "function_call_output":
        problem = _text_problem(f"{where}.call_id", item.get("call_id"))
        if problem:
            return problem
        output = item.get("output")
        if not isinstance(output, (str, list)):
            return f"{where}.output", f"Invalid value for '{where}.output': expected a string or an array."
    return None


def input_problem(raw: dict[str, Any]) -> tuple[str, str] | None:
    """What is wrong with `input`, as (param, message), or None. It may be left out only with a stored `prompt`."""
    value = raw.get("input")
    if value is None:
        return None if raw.get("prompt") is not None else ("input", "Missing required parameter: 'input'.")
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return "input", f"Invalid type for 'input': expected {INPUT_SHAPES}."
    if len(value) > settings.LLMPROXY_MAX_MESSAGES:
        return "input", f"Too many input items: {len(value)} sent, at most {settings.LLMPROXY_MAX_MESSAGES} accepted."
    for index, item in enumerate(value):
        problem = item_problem(f"input.[{index}]", item)
        if problem:
            return problem
    return None


def refuse_stateful_fields(raw: dict[str, Any]) -> None:
    for name, reason in STATEFUL_FIELDS.items():
        if raw.get(name) is not None:
            raise invalid_request(f"'{name}' is not accepted by this gateway: {reason}; {STATE_ADVICE}.",
                                  param=name, code="unsupported_parameter")  # fmt: skip
    if raw.get("background") is True:
        raise invalid_request("'background' is not accepted by this gateway: a background response is fetched later "
                              "from the provider's store, which the gateway does not serve. Stream instead.",
                              param="background", code="unsupported_parameter")  # fmt: skip


def parse_responses_request(body: bytes) -> ResponsesRequest:
    raw = load_json_object(body)
    refuse_control_fields(raw)
    refuse_stateful_fields(raw)
    try:
        validated = ResponsesRequestBody.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    problem = input_problem(raw)
    if problem:
        raise invalid_request(problem[1], param=problem[0])
    return ResponsesRequest(validated, raw)


def unparsable_arguments(request: ResponsesRequest) -> GatewayError | None:
    """A `function_call` item whose arguments are not JSON: LiteLLM's bridge parses them for the provider's tool-use
    block (and fails), so for bridged models the caller is told which item."""
    for index, item in enumerate(request.input if isinstance(request.input, list) else ()):
        if item.get("type") != "function_call":
            continue
        try:
            orjson.loads(item["arguments"])
        except orjson.JSONDecodeError:
            where = f"input.[{index}].arguments"
            return invalid_request(f"Invalid value for '{where}': this model takes tool-call arguments as JSON only.",
                                   param=where)  # fmt: skip
    return None


def input_texts(request: ResponsesRequest) -> tuple[list[str], int]:
    """The input's texts (instructions, message text, tool-call arguments and outputs) and its count of other parts
    (images, files, audio)."""
    texts = [request.instructions] if request.instructions else []
    value = request.input
    if isinstance(value, str):
        return [*texts, value], 0
    other_parts = 0
    for item in value or ():
        for name in ("arguments", "output", "content"):
            field = item.get(name)
            if isinstance(field, str):
                texts.append(field)
            elif isinstance(field, list):
                for part in field:
                    text = part.get("text") if isinstance(part, dict) else None
                    if isinstance(text, str):
                        texts.append(text)
                    else:
                        other_parts += 1
    return texts, other_parts
