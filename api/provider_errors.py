"""Provider failures (LiteLLM exceptions, network faults) mapped to what the client is told.

The same fault gives the same status, code and message on both paths (the direct relay and LiteLLM): a caller reads
what the provider said, in the gateway's words, never LiteLLM's class names or advice about LiteLLM's settings.
"""

import ast
import asyncio
import json
import logging
import re
import socket

import aiohttp
import httpx
import openai
import orjson

from api.errors import GatewayError, scrub

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 2000


# "litellm.BadRequestError: ", "InternalServerError: ", "AnthropicException - ", … (often several in a row)
LITELLM_PREFIX = re.compile(r"^\s*(?:litellm\.)?[A-Za-z]*(?:Error|Exception)\s*(?::|-)\s*")
# Where LiteLLM's advice to its own users begins: nothing from here on helps a caller of the gateway.
LITELLM_ADVICE = re.compile(
    r"\.?\s*(?:Handle with `litellm|To drop (?:these|it)|If you want to use these params|or for proxy:|"
    r"`?litellm_settings|Received Model Group|Available Model Group Fallbacks|LiteLLM Retried|model_group=)"
)
UNSUPPORTED_PARAMS = re.compile(r"(?P<provider>[\w\-]+) does not support parameters: \[(?P<names>[^\]]*)\]")
SETTING_NOT_SUPPORTED = re.compile(r"Setting `?(?P<names>[^`]+?)`? is not supported by (?P<provider>[\w\-]+)")
IMAGE_FETCH = re.compile(r"Unable to fetch image from URL.*?url=(?P<url>\S+)", re.S)


def _unwrap_bytes_repr(text: str) -> str:
    if len(text) > 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
    return text


def _message_in_json(text: str) -> str | None:
    """The provider's own message from an OpenAI- or Anthropic-shaped error body."""
    if not text.startswith("{"):
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    return data.get("message") if isinstance(data, dict) and isinstance(data.get("message"), str) else None


def _names(listed: str) -> str:
    names = [name.strip().strip("'\"") for name in listed.split(",") if name.strip()]
    return ", ".join(f"'{name}'" for name in names)


def caller_message(raw: str) -> str:
    """LiteLLM's exception message, reduced to what the provider said and what the caller can change."""
    unsupported = UNSUPPORTED_PARAMS.search(raw) or SETTING_NOT_SUPPORTED.search(raw)
    if unsupported:
        return (
            f"The provider ({unsupported['provider']}) does not accept the parameter(s) {_names(unsupported['names'])}"
            " for this model: remove them from the request."
        )
    image = IMAGE_FETCH.search(raw)
    if image:
        return (
            f"The image at {image['url']} could not be fetched for the provider: send the image as a base64 data URL "
            "(data:image/png;base64,…) instead."
        )
    text = raw.strip()
    while (prefix := LITELLM_PREFIX.match(text)) is not None and prefix.end() > 0:
        text = text[prefix.end() :]
    advice = LITELLM_ADVICE.search(text)
    if advice is not None:
        text = text[: advice.start()]
    text = _unwrap_bytes_repr(text.strip())
    return (_message_in_json(text) or text).strip() or "no message"


def _provider_message(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return scrub(caller_message(str(message)))[:MAX_MESSAGE_LENGTH]


def _retry_after(exc: BaseException) -> str | None:
    for source in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        try:
            value = source.get("retry-after") if source is not None else None
        except Exception:
            value = None
        if value:
            return str(value)
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# A refused connection or a failed DNS lookup. Not LiteLLM's APIConnectionError: LiteLLM raises it as a catch-all
# (an invalid JSON answer, a stream cut midway), so its class says nothing; the causes do.
NEVER_CONNECTED = (httpx.ConnectError, aiohttp.ClientConnectorError, ConnectionRefusedError, socket.gaierror)


CONNECTION_LOST = (
    httpx.ReadError, httpx.RemoteProtocolError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
    ConnectionResetError,
)  # fmt: skip
INVALID_ANSWER_MESSAGE = "the provider's answer is not valid JSON"
CONNECTION_LOST_MESSAGE = "the connection closed before the answer was complete"


def map_provider_exception(exc: BaseException, *, model: str) -> GatewayError:
    """A LiteLLM exception (or a network fault) as what the client is told; the same as the relay's for one fault."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, httpx.TimeoutException)) or status == 408:
        return provider_timeout(model)
    causes = _causes(exc)
    if any(isinstance(cause, NEVER_CONNECTED) for cause in causes):
        return provider_unreachable(model)
    if any(isinstance(cause, json.JSONDecodeError) for cause in causes):
        return error_for_status(502, INVALID_ANSWER_MESSAGE, model=model)
    if any(isinstance(cause, CONNECTION_LOST) for cause in causes):
        return error_for_status(502, CONNECTION_LOST_MESSAGE, model=model)
    if isinstance(exc, openai.BadRequestError) and status not in (400, 404, 422):
        status = 400  # LiteLLM's own parameter checks raise BadRequestError subclasses
    if (status is not None and status != 500) or isinstance(exc, openai.APIStatusError):
        context_window = type(exc).__name__ == "ContextWindowExceededError"  # LiteLLM's class, not imported here
        return error_for_status(status or 502, _provider_message(exc), model=model, retry_after=_retry_after(exc),
                                context_window=context_window)  # fmt: skip
    if isinstance(exc, httpx.TransportError):
        return error_for_status(502, CONNECTION_LOST_MESSAGE, model=model)
    if isinstance(exc, openai.APIError):
        return error_for_status(502, _provider_message(exc), model=model)
    logger.error("unexpected failure calling the provider for %s: %s: %s", model, type(exc).__name__, scrub(str(exc)))
    return _provider_error(502, f"The provider call for '{model}' failed.", code="provider_error")


CONTEXT_WINDOW_EXCEEDED = "context_length_exceeded"  # OpenAI's code; the failover step reads it
# How providers say the prompt does not fit, as LiteLLM recognises it (ExceptionCheckers.
# is_error_str_context_window_exceeded in litellm_core_utils/exception_mapping_utils.py; copied as data so that a
# relay-only worker never imports LiteLLM; tests/api/test_provider_errors.py holds the two lists together).
CONTEXT_WINDOW_PHRASES = (
    "exceed context limit", "this model's maximum context length is",
    "requested token count exceeds the model's maximum context length", "model's maximum context limit",
    "is longer than the model's context length", "input tokens exceed the configured limit",
    "exceeds the available context size", "exceeds the maximum number of tokens allowed", "context_length_exceeded",
    "prompt is too long",
)  # fmt: skip


def says_context_window_exceeded(message: str) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in CONTEXT_WINDOW_PHRASES)


def _provider_error(status: int, message: str, *, code: str, type: str = "api_error", headers=None) -> GatewayError:
    return GatewayError(status, message, type=type, code=code, headers=headers, from_provider=True)


def no_credentials(model_name: str) -> GatewayError:
    """The gateway has no usable provider key for a model (the operator's problem: logged where it is found)."""
    return _provider_error(
        502,
        f"The gateway has no provider credentials for model '{model_name}'. Tell the gateway's operator.",
        code="provider_not_configured",
    )


def provider_timeout(model: str) -> GatewayError:
    return _provider_error(504, f"The provider for '{model}' timed out.", type="timeout", code="provider_timeout")


def provider_unreachable(model: str) -> GatewayError:
    return _provider_error(502, f"Could not reach the provider for '{model}'.", code="provider_unreachable")


def error_for_status(status: int, message: str, *, model: str, retry_after: str | None = None,
                     context_window: bool = False) -> GatewayError:  # fmt: skip
    """What the client is told when the provider answered `status` (scrubbed `message`)."""
    if status == 400 and (context_window or says_context_window_exceeded(message)):
        return _provider_error(400, message, type="invalid_request_error", code=CONTEXT_WINDOW_EXCEEDED)
    if status == 429:
        return _provider_error(
            429,
            f"The provider for '{model}' is rate limiting requests: {message}",
            type="rate_limit_exceeded",
            code="provider_rate_limited",
            headers={"Retry-After": retry_after} if retry_after else None,
        )
    if status in (400, 413, 422):
        return _provider_error(400, message, type="invalid_request_error", code="provider_rejected_request")
    if status == 404:
        return _provider_error(404, message, type="invalid_request_error", code="model_not_found")
    if status in (401, 403):
        logger.error("provider refused the gateway's credentials for model %s: %s", model, message)
        return _provider_error(
            502,
            f"The provider refused the gateway's credentials for model '{model}'. Tell the gateway's operator.",
            code="provider_auth_error",
        )
    if status in (503, 529):  # 529: Anthropic's "overloaded"
        return _provider_error(
            503, f"The provider for '{model}' is unavailable: {message}", code="provider_unavailable"
        )
    if status in (408, 504):
        return provider_timeout(model)
    return _provider_error(502, f"The provider for '{model}' failed: {message}", code="provider_error")
