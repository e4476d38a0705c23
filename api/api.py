"""The HTTP face: the OpenAI-compatible endpoints of the ninja API."""

import time

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from api import provider
from api.errors import GatewayError, error_response, invalid_request, unauthorized
from api.gateway import Caller, gateway
from api.schemas import ChatCompletionRequest, parse_chat_request
from keys.lookup import InvalidApiKey
from routing.resolver import ModelNotAllowed, resolve, visible_model_names

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


@api.exception_handler(GatewayError)
def on_gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
    return error_response(exc)


@api.exception_handler(InvalidApiKey)
def on_invalid_key(request: HttpRequest, exc: InvalidApiKey) -> HttpResponse:
    return error_response(unauthorized(str(exc)))


@api.exception_handler(AuthenticationError)
def on_missing_key(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(unauthorized("Missing API key: send 'Authorization: Bearer llmp_…'."))


@api.exception_handler(ModelNotAllowed)
def on_model_not_allowed(request: HttpRequest, exc: ModelNotAllowed) -> HttpResponse:
    return error_response(invalid_request(exc.message, param="model", code="model_not_found"))


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return error_response(invalid_request("The request is invalid."))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(GatewayError(exc.status_code, str(exc)))


CHAT_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
}


@api.post(
    "/v1/chat/completions",
    auth=api_key_auth,
    summary="Create a chat completion (OpenAI-compatible; stream: true for SSE)",
    openapi_extra={"requestBody": CHAT_REQUEST_BODY},
)
async def chat_completions(request: HttpRequest) -> HttpResponse:
    caller: Caller = request.auth
    chat = parse_chat_request(request.body)
    route = resolve(caller.policy, requested_model=chat.model, params=chat.params, allowlist=caller.key.allowed_models)
    if chat.stream:
        return await provider.stream(route, chat)
    return await provider.complete(route, chat)


@api.get("/v1/models", auth=api_key_auth, summary="List the models and aliases this key may use")
async def list_models(request: HttpRequest) -> HttpResponse:
    caller: Caller = request.auth
    snapshot = caller.policy
    data = []
    for name in visible_model_names(snapshot, caller.key.allowed_models):
        model = snapshot.models[snapshot.aliases.get(name, name)]
        data.append({"id": name, "object": "model", "created": 0, "owned_by": model.provider or "llmproxy"})
    return JsonResponse({"object": "list", "data": data})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False
    finally:
        connection.close()


@api.get("/healthz", summary="Liveness and database reachability")
async def healthz(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    database_ok = await sync_to_async(_database_ok)()
    body = {
        "status": "ok" if database_ok else "degraded",
        "database": "ok" if database_ok else "unreachable",
        "check_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if database_ok else 503)
