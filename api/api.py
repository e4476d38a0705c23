"""The HTTP face: the OpenAI-compatible endpoints of the ninja API."""

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer
from pydantic import BaseModel

from api.endpoints import ENDPOINTS_BY_PATH
from api.endpoints.chat import CHAT
from api.endpoints.embeddings import EMBEDDINGS, EmbeddingsRequestBody
from api.endpoints.messages import MESSAGES
from api.endpoints.messages_schema import MessagesRequestBody
from api.endpoints.responses import RESPONSES
from api.endpoints.responses_request import ResponsesRequestBody
from api.errors import REJECTIONS, GatewayError, as_gateway_error, error_response, invalid_request, unauthorized
from api.gateway import Caller, gateway
from api.pipeline import handle, unexpected_failure
from api.schemas import ChatCompletionRequest
from llmproxy_site.dbthread import run_in_db_thread
from routing.policy import PolicySnapshot
from routing.resolver import visible_model_names

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


def request_body(schema: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint whose view reads the body itself (its adapter parses it)."""
    return {"required": True, "content": {"application/json": {"schema": schema.model_json_schema()}}}


@api.post(
    "/v1/chat/completions",
    summary="Create a chat completion (OpenAI-compatible; stream: true for SSE)",
    openapi_extra={"requestBody": request_body(ChatCompletionRequest), "security": [{"ApiKeyAuth": []}]},
)
async def chat_completions(request: HttpRequest) -> HttpResponse:
    return await handle(request, CHAT)


@api.post(
    "/v1/embeddings",
    summary="Create embeddings (OpenAI-compatible)",
    openapi_extra={"requestBody": request_body(EmbeddingsRequestBody), "security": [{"ApiKeyAuth": []}]},
)
async def embeddings(request: HttpRequest) -> HttpResponse:
    return await handle(request, EMBEDDINGS)


@api.post(
    "/v1/responses",
    summary="Create a model response (OpenAI's Responses API; stream: true for typed events)",
    openapi_extra={"requestBody": request_body(ResponsesRequestBody), "security": [{"ApiKeyAuth": []}]},
)
async def responses(request: HttpRequest) -> HttpResponse:
    return await handle(request, RESPONSES)


@api.post(
    "/v1/messages",
    summary="Create a message (Anthropic's Messages API; key as x-api-key or Bearer; stream: true for its events)",
    openapi_extra={"requestBody": request_body(MessagesRequestBody), "security": [{"ApiKeyAuth": []}]},
)
async def messages(request: HttpRequest) -> HttpResponse:
    return await handle(request, MESSAGES)


def model_entry(snapshot: PolicySnapshot, name: str) -> dict[str, Any]:
    model = snapshot.models[snapshot.aliases.get(name, name)]
    return {"id": name, "object": "model", "created": 0, "owned_by": model.provider or "llmproxy"}


@api.get("/v1/models", auth=api_key_auth, summary="List the models and aliases this key may use")
async def list_models(request: HttpRequest) -> HttpResponse:
    caller: Caller = request.auth
    names = visible_model_names(caller.policy, caller.key.allowed_models, caller.key.team_allowlist)
    return JsonResponse({"object": "list", "data": [model_entry(caller.policy, name) for name in names]})


@api.get("/v1/models/{path:model}", auth=api_key_auth, summary="One model or alias this key may use")
async def retrieve_model(request: HttpRequest, model: str) -> HttpResponse:
    caller: Caller = request.auth
    if model not in visible_model_names(caller.policy, caller.key.allowed_models, caller.key.team_allowlist):
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


@api.get("/healthz/live", summary="Liveness: the process answers (no I/O)")
async def healthz_live(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


async def _redis_ok(url: str) -> bool:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=settings.LLMPROXY_READY_TIMEOUT_SECONDS,
                                          socket_timeout=settings.LLMPROXY_READY_TIMEOUT_SECONDS)  # fmt: skip
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def _passes(check: Awaitable[Any]) -> bool:
    try:
        return bool(await asyncio.wait_for(check, settings.LLMPROXY_READY_TIMEOUT_SECONDS))
    except Exception:
        return False


@api.get("/healthz/ready", summary="Readiness: database reachable, Redis reachable (when configured), policy loaded")
async def healthz_ready(request: HttpRequest) -> HttpResponse:
    """503 names every failed check, so a load balancer takes the host out and its operator sees why."""
    started = time.perf_counter()
    checks = {"database": run_in_db_thread(_database_ok), "policy": gateway.policy.current()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok(settings.REDIS_URL)
    results = await asyncio.gather(*(_passes(check) for check in checks.values()))
    failed = [name for name, ok in zip(checks, results, strict=True) if not ok]
    body = {
        "status": "unavailable" if failed else "ok",
        "checks": {name: "ok" if ok else "failed" for name, ok in zip(checks, results, strict=True)},
        "failed": failed,
        "check_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JsonResponse(body, status=503 if failed else 200)


def refuse_other_methods(path: str, allowed: str) -> None:
    """A wrong method gets a JSON 405 (with Allow) in the endpoint's error shape, not ninja's plain-text one."""

    def method_not_allowed(request: HttpRequest) -> HttpResponse:
        message = f"Invalid method for URL ({request.method} {request.path}): use {allowed}."
        error = GatewayError(405, message, code="method_not_allowed", headers={"Allow": allowed})
        adapter = ENDPOINTS_BY_PATH.get(path)
        return error_response(error) if adapter is None else adapter.error_response(error)

    def method_not_allowed_for_model(request: HttpRequest, model: str) -> HttpResponse:
        return method_not_allowed(request)

    view = method_not_allowed_for_model if "{path:model}" in path else method_not_allowed
    others = [method for method in ("GET", "POST", "PUT", "PATCH", "DELETE") if method != allowed]
    api.api_operation(others, path, include_in_schema=False)(view)


for endpoint, method in (
    ("/v1/chat/completions", "POST"),
    ("/v1/embeddings", "POST"),
    ("/v1/responses", "POST"),
    ("/v1/messages", "POST"),
    ("/v1/models", "GET"),
    ("/v1/models/{path:model}", "GET"),
    ("/healthz", "GET"),
    ("/healthz/live", "GET"),
    ("/healthz/ready", "GET"),
):
    refuse_other_methods(endpoint, method)
