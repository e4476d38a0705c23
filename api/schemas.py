"""The OpenAI Chat Completions request: validated fields, pass-through fields, and forbidden control fields.

The JSON loading (size, depth, object), the control-field refusal and the 400 naming the field are shared by every
endpoint's parser (load_json_object, refuse_control_fields, validation_error).
"""

import re
from typing import Any

import orjson
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from api.errors import GatewayError, invalid_request
from api.shapes import UNION_TAGS, Message, Stop, StreamOptions, Tool, ToolChoice, message_problem

MAX_INT = 2**31 - 1  # token counts above this are nonsense, and integers past 64 bits cannot be re-serialised
PARAM_PARTS = 4  # a too-deep place is named by its first few path parts
OBJECT_ERRORS = frozenset({"model_type", "model_attributes_type", "dict_type"})

# Documented OpenAI Chat Completions fields that go to the provider untouched (LiteLLM maps them per provider).
PASS_THROUGH_FIELDS = frozenset(
    {
        "stop", "seed", "n", "response_format", "stream_options", "logprobs", "top_logprobs",
        "parallel_tool_calls", "reasoning_effort", "logit_bias", "max_completion_tokens", "modalities",
        "audio", "prediction", "service_tier", "store", "functions", "function_call", "verbosity",
        "web_search_options", "prompt_cache_key", "safety_identifier",
    }
)  # fmt: skip

# LiteLLM (and SDK) control arguments: taking any of them from a caller would let it steer the provider call.
CONTROL_FIELDS = frozenset(
    {
        "api_base", "base_url", "api_key", "api_version", "custom_llm_provider", "mock_response",
        "mock_tool_calls", "mock_timeout", "extra_headers", "extra_body", "extra_query", "headers",
        "default_headers", "timeout", "request_timeout", "stream_timeout", "num_retries", "max_retries",
        "fallbacks", "context_window_fallback_dict", "organization", "deployment_id", "litellm_params",
        "litellm_logging_obj", "litellm_call_id", "litellm_metadata", "litellm_credential_name", "model_list",
        "client", "azure_ad_token", "azure_ad_token_provider", "aws_access_key_id", "aws_secret_access_key",
        "aws_session_token", "aws_region_name", "aws_profile_name", "vertex_credentials", "vertex_project",
        "vertex_location", "input_cost_per_token", "output_cost_per_token", "logger_fn", "drop_params",
        "additional_drop_params", "allowed_openai_params", "caching", "cache", "ssl_verify",
        "proxy_server_request", "shared_session", "use_litellm_proxy", "use_in_pass_through", "api_type",
    }
)  # fmt: skip


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_INT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_INT)
    n: int | None = Field(default=None, ge=1, le=128)
    stop: Stop = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice = None
    user: str | None = None


# Fields whose validated (possibly coerced) value is sent; the shaped ones are sent as the caller wrote them.
VALIDATED_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "user",
    }
)
FORWARDED_FIELDS = (PASS_THROUGH_FIELDS | {"stop", "stream_options", "tools", "tool_choice"}) - VALIDATED_FIELDS
KNOWN_FIELDS = VALIDATED_FIELDS | FORWARDED_FIELDS | {"model", "messages", "stream"}


class ChatRequest:
    """A parsed request split into what the gateway decides on and what it forwards."""

    __slots__ = ("extra_body", "messages", "model", "params", "stream")

    def __init__(self, validated: ChatCompletionRequest, raw: dict[str, Any]) -> None:
        self.model = validated.model
        self.messages: list[dict[str, Any]] = raw["messages"]
        self.stream = bool(validated.stream)
        self.params: dict[str, Any] = {
            name: getattr(validated, name) for name in VALIDATED_FIELDS if getattr(validated, name) is not None
        }
        self.params.update({name: raw[name] for name in FORWARDED_FIELDS if raw.get(name) is not None})
        self.extra_body: dict[str, Any] = {name: value for name, value in raw.items() if name not in KNOWN_FIELDS}


def _param_path(location: tuple[Any, ...]) -> str | None:
    parts = [part for part in location if part not in UNION_TAGS]
    if not parts:
        return None
    path = str(parts[0])
    for part in parts[1:]:
        path += f".[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _depth_problem(raw: Any, limit: int) -> tuple[Any, ...] | None:
    """The place (as a location) where `raw` nests deeper than `limit` containers, or None."""
    pending: list[tuple[Any, int, tuple[Any, ...]]] = [(raw, 1, ())]
    while pending:
        value, depth, where = pending.pop()
        if depth > limit:
            return where
        if isinstance(value, dict):
            pending.extend((item, depth + 1, (*where, key)[:PARAM_PARTS]) for key, item in value.items()
                           if isinstance(item, (dict, list)))  # fmt: skip
        elif isinstance(value, list):
            pending.extend((item, depth + 1, (*where, index)[:PARAM_PARTS]) for index, item in enumerate(value)
                           if isinstance(item, (dict, list)))  # fmt: skip
    return None


JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


def _raw_depth_problem(body: bytes, limit: int) -> tuple[Any, ...] | None:
    """The same place, read from the raw text (for bodies too deep for the JSON parser itself)."""
    stack: list[list[Any]] = []  # per open container: [is_object, key or index, expecting_a_key]
    for match in JSON_TOKEN.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            if len(stack) >= limit:
                return tuple(entry[1] for entry in stack)[:PARAM_PARTS]
            stack.append([token == b"{", None if token == b"{" else 0, token == b"{"])
        elif token in (b"}", b"]"):
            if stack:
                stack.pop()
        elif not stack:
            continue
        elif token == b",":
            top = stack[-1]
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
        elif stack[-1][0] and stack[-1][2]:  # an object's key
            try:
                stack[-1][1] = orjson.loads(token)
            except orjson.JSONDecodeError:
                stack[-1][1] = token[1:-1].decode(errors="replace")
            stack[-1][2] = False
    return None


def _too_deep(where: tuple[Any, ...] | None, limit: int) -> GatewayError:
    param = _param_path(where) if where else None
    place = f"'{param}'" if param else "The request body"
    return invalid_request(
        f"{place} is nested too deeply: at most {limit} levels of arrays and objects are accepted.",
        param=param,
        code="json_too_deep",
    )


def load_json_object(body: bytes) -> dict[str, Any]:
    limit = settings.LLMPROXY_MAX_JSON_DEPTH
    if not body.strip():
        raise invalid_request("The request body is empty: send a JSON object.", code="invalid_json")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise _too_deep(_raw_depth_problem(body, limit), limit) from None
        raise invalid_request("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise invalid_request("The request body must be a JSON object.", code="invalid_json")
    if body.count(b"{") + body.count(b"[") > limit:  # else it cannot be nested deeper than the limit
        where = _depth_problem(raw, limit)
        if where is not None:
            raise _too_deep(where, limit)
    return raw


def validation_error(exc: ValidationError) -> GatewayError:
    errors = exc.errors(include_url=False)
    first = max(errors, key=lambda error: len([part for part in error["loc"] if part not in UNION_TAGS]))
    param = _param_path(tuple(first["loc"]))
    if first["type"] == "missing":
        return invalid_request(f"Missing required parameter: '{param}'.", param=param)
    message = "expected an object" if first["type"] in OBJECT_ERRORS else first["msg"]
    return invalid_request(f"Invalid value for '{param}': {message}.", param=param)


def refuse_control_fields(raw: dict[str, Any]) -> None:
    """A LiteLLM or SDK control field in a request body is a 400 on every endpoint: a caller never steers the call."""
    forbidden = sorted(CONTROL_FIELDS.intersection(raw))
    if forbidden:
        raise invalid_request(
            f"'{forbidden[0]}' is not accepted: the gateway decides how the provider is called.",
            param=forbidden[0],
            code="forbidden_parameter",
        )


def parse_chat_request(body: bytes) -> ChatRequest:
    raw = load_json_object(body)
    refuse_control_fields(raw)
    messages = raw.get("messages")
    if isinstance(messages, list) and len(messages) > settings.LLMPROXY_MAX_MESSAGES:
        raise invalid_request(
            f"Too many messages: {len(messages)} sent, at most {settings.LLMPROXY_MAX_MESSAGES} are accepted.",
            param="messages",
            code="array_above_max_length",
        )
    try:
        validated = ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    for index, message in enumerate(messages):
        problem = message_problem(index, message)
        if problem:
            raise invalid_request(problem[1], param=problem[0])
    return ChatRequest(validated, raw)


__all__ = ["ChatCompletionRequest", "ChatRequest", "GatewayError", "parse_chat_request"]
