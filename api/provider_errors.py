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


def map_provider_exception(exc: BaseException, *, model: str) -> GatewayError:
    error = _map(exc, model=model)
    error.from_provider = True
    return error


def _map(exc: BaseException, *, model: str) -> GatewayError:
    status = getattr(exc, "status_code", None)
    message = _provider_message(exc)
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, httpx.TimeoutException)) or status == 408:
        return GatewayError(504, f"The provider for '{model}' timed out.", type="timeout", code="provider_timeout")
    if status == 429:
        retry_after = _retry_after(exc)
        return GatewayError(
            429,
            f"The provider for '{model}' is rate limiting requests: {message}",
            type="rate_limit_exceeded",
            code="provider_rate_limited",
            headers={"Retry-After": retry_after} if retry_after else None,
        )
    if status in (400, 422) or isinstance(exc, openai.BadRequestError):
        return GatewayError(400, message, type="invalid_request_error", code="provider_rejected_request")
    if status == 404:
        return GatewayError(404, message, type="invalid_request_error", code="model_not_found")
    if status in (401, 403):
        logger.error("provider refused the gateway's credentials for model %s: %s", model, message)
        return GatewayError(
            502,
            f"The provider refused the gateway's credentials for model '{model}'. Tell the gateway's operator.",
            type="api_error",
            code="provider_auth_error",
        )
    if status == 503:
        return GatewayError(
            503, f"The provider for '{model}' is unavailable: {message}", type="api_error", code="provider_unavailable"
        )
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        return GatewayError(
            502, f"Could not reach the provider for '{model}'.", type="api_error", code="provider_unreachable"
        )
    if isinstance(exc, openai.APIError):
        return GatewayError(
            502, f"The provider for '{model}' failed: {message}", type="api_error", code="provider_error"
        )
    logger.error("unexpected failure calling the provider for %s: %s: %s", model, type(exc).__name__, message)
    return GatewayError(502, f"The provider call for '{model}' failed.", type="api_error", code="provider_error")
