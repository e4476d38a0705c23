"""OpenAI-shaped errors: one exception type for every failure a client may see, turned into HTTP here only."""

import os
import re
from typing import Any

import orjson
from django.http import HttpResponse

from keys.lookup import InvalidApiKey, KeyLookupsBusy
from routing.resolver import ModelNotAllowed, ParameterRefused
from usage.limits import LimitExceeded, LimitsUnavailable

SECRET_ENV_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
SECRET_PATTERNS = (
    re.compile(r"llmp_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:x-api-key|api[-_]?key|authorization)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]{6,}"),
    re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token)=)[^&\s'\"]+"),
)


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        from_provider: bool = False,
    ) -> None:
        super().__init__(message)
        self.from_provider = from_provider
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, type="invalid_request_error", param=param, code=code)


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"The request body is larger than {limit} bytes.", code="request_too_large")


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, type="invalid_request_error", code="invalid_api_key")


def as_gateway_error(exc: Exception) -> GatewayError:
    """Every rejection the gateway itself makes, as the one error type clients see."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, InvalidApiKey):
        return unauthorized(str(exc))
    if isinstance(exc, ModelNotAllowed):
        return invalid_request(exc.message, param="model", code="model_not_found")
    if isinstance(exc, ParameterRefused):
        return invalid_request(exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, LimitExceeded):
        return GatewayError(429, exc.message, type=exc.type, code=exc.type, headers=exc.headers)
    if isinstance(exc, KeyLookupsBusy):
        return GatewayError(503, str(exc), type="api_error", code="server_busy", headers={"Retry-After": "1"})
    if isinstance(exc, LimitsUnavailable):
        return GatewayError(503, str(exc), type="api_error", code="limits_unavailable", headers={"Retry-After": "1"})
    raise TypeError(f"not a gateway rejection: {type(exc).__name__}")


REJECTIONS = (
    GatewayError,
    InvalidApiKey,
    KeyLookupsBusy,
    ModelNotAllowed,
    ParameterRefused,
    LimitExceeded,
    LimitsUnavailable,
)


def error_response(error: GatewayError) -> HttpResponse:
    response = HttpResponse(orjson.dumps(error.as_dict()), status=error.status, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    return response


def sse_error_event(error: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(error.as_dict()) + b"\n\n"


def _secret_values() -> list[str]:
    return sorted(
        (value for name, value in os.environ.items() if name.upper().endswith(SECRET_ENV_SUFFIXES) and len(value) >= 8),
        key=len,
        reverse=True,
    )


def scrub(text: str) -> str:
    """Remove anything that looks like a credential from text bound for a client or a log line."""
    for value in _secret_values():
        text = text.replace(value, "[redacted]")
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text
