"""Real LiteLLM exception objects (as LiteLLM raises them) mapped to what the client is told."""

import os

import httpx
import litellm
import pytest

from api.errors import scrub
from api.provider_errors import map_provider_exception

OPENAI = {"model": "m", "llm_provider": "openai"}
REQUEST = httpx.Request("POST", "http://provider.invalid/v1/chat/completions")


def response(status: int, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=REQUEST)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (litellm.Timeout(message="timed out", **OPENAI), 504, "provider_timeout"),
        (litellm.RateLimitError(message="slow down", **OPENAI, response=response(429)), 429, "provider_rate_limited"),
        (litellm.BadRequestError(message="bad", **OPENAI), 400, "provider_rejected_request"),
        (litellm.ContextWindowExceededError(message="too long", **OPENAI), 400, "context_length_exceeded"),
        (litellm.NotFoundError(message="no such model", **OPENAI), 404, "model_not_found"),
        (litellm.AuthenticationError(message="bad key", **OPENAI), 502, "provider_auth_error"),
        (litellm.ServiceUnavailableError(message="down", **OPENAI), 503, "provider_unavailable"),
        (litellm.InternalServerError(message="boom", **OPENAI), 502, "provider_error"),
        # LiteLLM's catch-all: without a refused connection or a DNS failure among its causes, not "unreachable"
        (litellm.APIConnectionError(message="Connection error.", **OPENAI), 502, "provider_error"),
        (RuntimeError("unexpected"), 502, "provider_error"),
    ],
)  # fmt: skip
def test_provider_failures_map_to_documented_statuses(exc, status, code):
    error = map_provider_exception(exc, model="m")
    assert (error.status, error.code) == (status, code)
    assert set(error.as_dict()["error"]) == {"message", "type", "param", "code"}


def test_rate_limit_carries_retry_after():
    exc = litellm.RateLimitError(message="slow down", **OPENAI, response=response(429, {"retry-after": "7"}))
    assert map_provider_exception(exc, model="m").headers == {"Retry-After": "7"}


def test_provider_messages_are_scrubbed(monkeypatch):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "super-secret-provider-value")
    exc = litellm.BadRequestError(
        message="bad key super-secret-provider-value for https://h/v1?key=abc123456 "
        "Authorization: Bearer sk-abcdefghijk",
        model="m",
        llm_provider="openai",
    )
    message = map_provider_exception(exc, model="m").message
    assert "super-secret-provider-value" not in message
    assert "abc123456" not in message and "sk-abcdefghijk" not in message
    assert "[redacted]" in message
    assert os.environ["SOME_PROVIDER_API_KEY"] not in scrub(str(exc))


def test_our_own_keys_are_scrubbed():
    assert "llmp_" + "a" * 20 not in scrub("key llmp_" + "a" * 20 + " was used")


# Messages as LiteLLM 1.110 builds them (seen against the fake provider), and what the caller reads instead.
LITELLM_MESSAGES = [
    ("litellm.InternalServerError: InternalServerError: OpenAIException - fake provider error 500",
     "fake provider error 500"),
    ("litellm.InternalServerError: AnthropicException - b'{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
     "\"message\":\"overloaded now\"}}'. Handle with `litellm.InternalServerError`.", "overloaded now"),
    ("litellm.BadRequestError: AnthropicException - {\"type\":\"error\",\"error\":{\"type\":"
     "\"invalid_request_error\",\"message\":\"max_tokens: must be positive\"}}", "max_tokens: must be positive"),
    ("litellm.MidStreamFallbackError: litellm.APIConnectionError: APIConnectionError: OpenAIException - cut short",
     "cut short"),
    ("litellm.UnsupportedParamsError: anthropic does not support parameters: ['logit_bias'], for model=claude-x. "
     "To drop these, set `litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`\n. \n "
     "If you want to use these params dynamically send allowed_openai_params=['logit_bias'] in your request.",
     "The provider (anthropic) does not accept the parameter(s) 'logit_bias' for this model: remove them from the "
     "request."),
    ("litellm.BadRequestError: Error: Unable to fetch image from URL. The proxy could not resolve this host or its URL "
     "policy rejected it; an admin can check the proxy log and `user_url_allowed_hosts` in litellm_settings. "
     "url=http://10.0.0.1/cat.png",
     "The image at http://10.0.0.1/cat.png could not be fetched for the provider: send the image as a base64 data URL "
     "(data:image/png;base64,…) instead."),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), LITELLM_MESSAGES)
def test_litellm_messages_reach_the_caller_in_the_gateways_words(raw, expected):
    error = map_provider_exception(litellm.BadRequestError(message=raw, **OPENAI), model="m")
    assert error.message == expected
    for leak in ("litellm", "Handle with", "drop_params", "allowed_openai_params", "user_url_allowed_hosts",
                 "Exception -", "b'{"):  # fmt: skip
        assert leak not in error.message


def test_unreachable_only_for_refused_connections_and_dns_failures():
    def raised(cause: BaseException) -> litellm.APIConnectionError:
        try:
            try:
                raise cause
            except BaseException as inner:
                raise litellm.APIConnectionError(message="Connection error.", **OPENAI) from inner
        except litellm.APIConnectionError as exc:
            return exc

    refused = raised(httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST))
    invalid_json = raised(ValueError("not json"))
    assert map_provider_exception(refused, model="m").code == "provider_unreachable"
    assert map_provider_exception(invalid_json, model="m").code == "provider_error"


CONTEXT_WINDOW_MESSAGES = [
    "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. "
    "Please reduce the length of the messages.",  # OpenAI
    "prompt is too long: 210000 tokens > 200000 maximum",  # Anthropic
    '{"error": {"code": "context_length_exceeded", "message": "too long"}}',
    "The input tokens exceed the configured limit of 272000 tokens.",
]
NOT_CONTEXT_WINDOW = [
    "max_tokens: Input should be greater than or equal to 1",
    "Invalid 'user': string too long. Expected a string with maximum length 64, but got a string with length 70",
    "Unsupported parameter: 'max_tokens' is not supported with this model.",
]


@pytest.mark.parametrize("message", CONTEXT_WINDOW_MESSAGES + NOT_CONTEXT_WINDOW)
def test_context_window_refusals_are_recognised_as_litellm_recognises_them(message: str) -> None:
    from litellm.litellm_core_utils.exception_mapping_utils import ExceptionCheckers

    from api.provider_errors import says_context_window_exceeded

    assert says_context_window_exceeded(message) is ExceptionCheckers.is_error_str_context_window_exceeded(message)
    assert says_context_window_exceeded(message) is (message in CONTEXT_WINDOW_MESSAGES)


def test_a_context_window_refusal_keeps_openais_code() -> None:
    from api.provider_errors import error_for_status

    error = error_for_status(400, CONTEXT_WINDOW_MESSAGES[0], model="gpt-4o")
    assert (error.status, error.code, error.type) == (400, "context_length_exceeded", "invalid_request_error")
    assert error_for_status(400, NOT_CONTEXT_WINDOW[0], model="gpt-4o").code == "provider_rejected_request"
