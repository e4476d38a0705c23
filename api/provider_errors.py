"""Provider failures (LiteLLM exceptions, network faults) mapped to what the client is told."""

import asyncio
import logging

import httpx
import openai

from api.errors import GatewayError, scrub

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 2000


def _provider_message(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    message = message.removeprefix("litellm.")
    return scrub(message)[:MAX_MESSAGE_LENGTH]


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


def _never_connected(exc: BaseException) -> bool:
    """A connection that never carried an answer. LiteLLM reports refused connections and DNS failures as a 500
    "Connection error.": look through the causes."""
    return any(isinstance(cause, (httpx.ConnectError, openai.APIConnectionError)) for cause in _causes(exc)) or (
        getattr(exc, "status_code", None) == 500 and "Connection error" in (getattr(exc, "message", "") or "")
    )


def map_provider_exception(exc: BaseException, *, model: str) -> GatewayError:
    """A LiteLLM exception (or a network fault) as what the client is told."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, httpx.TimeoutException)) or status == 408:
        return provider_timeout(model)
    if _never_connected(exc):
        return provider_unreachable(model)
    if isinstance(exc, openai.BadRequestError) and status not in (400, 404, 422):
        status = 400  # LiteLLM's own parameter checks raise BadRequestError subclasses
    if (status is not None and status != 500) or isinstance(exc, openai.APIStatusError):
        return error_for_status(status or 502, _provider_message(exc), model=model, retry_after=_retry_after(exc))
    if isinstance(exc, httpx.TransportError):
        return provider_unreachable(model)
    if isinstance(exc, openai.APIError):
        return error_for_status(502, _provider_message(exc), model=model)
    logger.error("unexpected failure calling the provider for %s: %s: %s", model, type(exc).__name__, scrub(str(exc)))
    return _provider_error(502, f"The provider call for '{model}' failed.", code="provider_error")


def _provider_error(status: int, message: str, *, code: str, type: str = "api_error", headers=None) -> GatewayError:
    return GatewayError(status, message, type=type, code=code, headers=headers, from_provider=True)


def provider_timeout(model: str) -> GatewayError:
    return _provider_error(504, f"The provider for '{model}' timed out.", type="timeout", code="provider_timeout")


def provider_unreachable(model: str) -> GatewayError:
    return _provider_error(502, f"Could not reach the provider for '{model}'.", code="provider_unreachable")


def error_for_status(status: int, message: str, *, model: str, retry_after: str | None = None) -> GatewayError:
    """What the client is told when the provider answered `status` (scrubbed `message`)."""
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
    if status == 503:
        return _provider_error(
            503, f"The provider for '{model}' is unavailable: {message}", code="provider_unavailable"
        )
    if status in (408, 504):
        return provider_timeout(model)
    return _provider_error(502, f"The provider for '{model}' failed: {message}", code="provider_error")
