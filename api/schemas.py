"""The OpenAI Chat Completions request: validated fields, pass-through fields, and forbidden control fields."""

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.errors import GatewayError, invalid_request

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
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    user: str | None = None


VALIDATED_FIELDS = frozenset(ChatCompletionRequest.model_fields) - {"model", "messages", "stream"}


class ChatRequest:
    """A parsed request split into what the gateway decides on and what it forwards."""

    __slots__ = ("extra_body", "messages", "model", "params", "stream")

    def __init__(self, validated: ChatCompletionRequest, raw: dict[str, Any]) -> None:
        self.model = validated.model
        self.messages = validated.messages
        self.stream = bool(validated.stream)
        self.params: dict[str, Any] = {
            name: getattr(validated, name) for name in VALIDATED_FIELDS if getattr(validated, name) is not None
        }
        self.params.update({name: raw[name] for name in PASS_THROUGH_FIELDS if raw.get(name) is not None})
        known = VALIDATED_FIELDS | PASS_THROUGH_FIELDS | {"model", "messages", "stream"}
        self.extra_body: dict[str, Any] = {name: value for name, value in raw.items() if name not in known}


def _param_path(location: tuple[Any, ...]) -> str | None:
    if not location:
        return None
    path = str(location[0])
    for part in location[1:]:
        path += f".[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _messages_problem(messages: list[dict[str, Any]]) -> tuple[str, str] | None:
    for index, message in enumerate(messages):
        role = message.get("role")
        if not isinstance(role, str) or not role:
            return f"messages.[{index}].role", "Each message needs a 'role'."
    return None


def parse_chat_request(body: bytes) -> ChatRequest:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_request("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise invalid_request("The request body must be a JSON object.", code="invalid_json")
    forbidden = sorted(CONTROL_FIELDS.intersection(raw))
    if forbidden:
        raise invalid_request(
            f"'{forbidden[0]}' is not accepted: the gateway decides how the provider is called.",
            param=forbidden[0],
            code="forbidden_parameter",
        )
    try:
        validated = ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        param = _param_path(tuple(first["loc"]))
        raise invalid_request(f"Invalid value for '{param}': {first['msg']}.", param=param) from None
    problem = _messages_problem(validated.messages)
    if problem:
        raise invalid_request(problem[1], param=problem[0])
    return ChatRequest(validated, raw)


__all__ = ["ChatCompletionRequest", "ChatRequest", "GatewayError", "parse_chat_request"]
