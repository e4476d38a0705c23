"""The HTTP face: the OpenAI-compatible endpoints of the ninja API."""

import asyncio
import logging
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from api import provider
from api.accounting import RequestAccount
from api.errors import (
    REJECTIONS,
    GatewayError,
    as_gateway_error,
    body_too_large,
    error_response,
    invalid_request,
    scrub,
    unauthorized,
)
from api.gateway import Caller, gateway
from api.schemas import ChatCompletionRequest, parse_chat_request
from llmproxy_site.dbthread import run_in_db_thread
from routing.policy import PolicySnapshot
from routing.resolver import resolve, token_reservation, visible_model_names

logger = logging.getLogger(__name__)

OVERHEAD_HEADER = "x-llmproxy-overhead-ms"  # time spent in the gateway, excluding the provider

api = NinjaAPI(
    title="llmproxy",
    version="1.0",
    description="OpenAI-compatible gateway. Authenticate with `Authorization: Bearer llmp_…`.",
    urls_namespace="llmproxy",
)


class ApiKeyAuth(HttpBearer):
    async def authenticate(self, request: HttpRequest, token: str) -> Caller:
        return await gateway.identify(token)


api_key_auth = ApiKeyAuth()


def on_rejection(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(as_gateway_error(exc))


for rejection in REJECTIONS:
    api.add_exception_handler(rejection, on_rejection)


@api.exception_handler(AuthenticationError)
def on_missing_key(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(unauthorized("Missing API key: send 'Authorization: Bearer llmp_…'."))


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return error_response(invalid_request("The request is invalid."))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(GatewayError(exc.status_code, str(exc)))


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(unexpected_failure(exc))


def unexpected_failure(exc: Exception) -> GatewayError:
    if isinstance(exc, RequestDataTooBig):  # api.edge refuses these first; Django's own check is the fallback
        return body_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, DatabaseError):
        logger.error("database unavailable: %s", scrub(str(exc)))
        return GatewayError(503, "The gateway's database is unavailable; try again shortly.", type="api_error",
                            code="database_unavailable", headers={"Retry-After": "1"})  # fmt: skip
    logger.exception("unexpected error")
    return GatewayError(500, "The gateway failed unexpectedly.", type="api_error", code="internal_error")


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


CHAT_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
}


@api.post(
    "/v1/chat/completions",
    summary="Create a chat completion (OpenAI-compatible; stream: true for SSE)",
    openapi_extra={"requestBody": CHAT_REQUEST_BODY, "security": [{"ApiKeyAuth": []}]},
)
async def chat_completions(request: HttpRequest) -> HttpResponse:
    account = RequestAccount(gateway)
    try:
        response = await answer_chat(request, account)
    except asyncio.CancelledError:  # the client went away while we waited for the provider
        account.disconnected()
        account.finish()
        raise
    except Exception as exc:
        error = as_gateway_error(exc) if isinstance(exc, REJECTIONS) else unexpected_failure(exc)
        account.fail(error, rejected=not error.from_provider and error.status < 500)
        account.finish()
        if account.limit_hold is not None:
            error.headers = {**account.limit_hold.headers, **error.headers}
        response = error_response(error)
        response[OVERHEAD_HEADER] = f"{account.overhead_ms():.2f}"
        return response
    if not account.streamed:
        account.finish()
    response[OVERHEAD_HEADER] = f"{account.overhead_ms():.2f}"
    if account.limit_hold is not None:
        for name, value in account.limit_hold.headers.items():
            response[name] = value
    return response


async def answer_chat(request: HttpRequest, account: RequestAccount) -> HttpResponse:
    caller = await gateway.identify(bearer_token(request))
    account.api_key = caller.key
    chat = parse_chat_request(request.body)
    account.requested_model, account.streamed, account.messages = chat.model, chat.stream, chat.messages
    route = resolve(caller.policy, requested_model=chat.model, params=chat.params, extra=chat.extra_body,
                    allowlist=caller.key.allowed_models)  # fmt: skip
    account.route = route
    reservation = token_reservation(route, chat.messages)
    account.limit_hold = await gateway.limits.admit(caller.key, token_reservation=reservation)
    if chat.stream:
        return await provider.stream(route, chat, account)
    return await provider.complete(route, chat, account)


def model_entry(snapshot: PolicySnapshot, name: str) -> dict[str, Any]:
    model = snapshot.models[snapshot.aliases.get(name, name)]
    return {"id": name, "object": "model", "created": 0, "owned_by": model.provider or "llmproxy"}


@api.get("/v1/models", auth=api_key_auth, summary="List the models and aliases this key may use")
async def list_models(request: HttpRequest) -> HttpResponse:
    caller: Caller = request.auth
    names = visible_model_names(caller.policy, caller.key.allowed_models)
    return JsonResponse({"object": "list", "data": [model_entry(caller.policy, name) for name in names]})


@api.get("/v1/models/{path:model}", auth=api_key_auth, summary="One model or alias this key may use")
async def retrieve_model(request: HttpRequest, model: str) -> HttpResponse:
    caller: Caller = request.auth
    if model not in visible_model_names(caller.policy, caller.key.allowed_models):
        return error_response(GatewayError(404, f"The model '{model}' does not exist or you do not have access to it.",
                                           param="model", code="model_not_found"))  # fmt: skip
    return JsonResponse(model_entry(caller.policy, model))


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


@api.get("/healthz", summary="Liveness and database reachability")
async def healthz(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    database_ok = await run_in_db_thread(_database_ok)
    body = {
        "status": "ok" if database_ok else "degraded",
        "database": "ok" if database_ok else "unreachable",
        "check_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if database_ok else 503)


def refuse_other_methods(path: str, allowed: str) -> None:
    """A wrong method gets OpenAI's JSON 405 (with Allow), not ninja's plain-text one."""

    def method_not_allowed(request: HttpRequest) -> HttpResponse:
        message = f"Invalid method for URL ({request.method} {request.path}): use {allowed}."
        return error_response(GatewayError(405, message, code="method_not_allowed", headers={"Allow": allowed}))

    def method_not_allowed_for_model(request: HttpRequest, model: str) -> HttpResponse:
        return method_not_allowed(request)

    view = method_not_allowed_for_model if "{path:model}" in path else method_not_allowed
    others = [method for method in ("GET", "POST", "PUT", "PATCH", "DELETE") if method != allowed]
    api.api_operation(others, path, include_in_schema=False)(view)


for endpoint, method in (
    ("/v1/chat/completions", "POST"),
    ("/v1/models", "GET"),
    ("/v1/models/{path:model}", "GET"),
    ("/healthz", "GET"),
):
    refuse_other_methods(endpoint, method)
