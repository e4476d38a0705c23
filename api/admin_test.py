"""The admin's "Send a test request": one short chat request through the real path, without an API key.

The route is built by routing.resolver from the policy (the model as callers see it; a chosen deployment through
routing.resolver.served_by, even one switched off, so it can be tried before it is enabled), the call is the chat
adapter's relay or LiteLLM call as api.failover makes it (the model's deployments in their normal order, or only the
chosen one: no failover), and the account is api.accounting's, so the usage row, tokens and cost are those a caller
would get. The row is marked `admin_test` and carries "admin test: <username>" as its key name.

Cooldowns and per-deployment quotas are neither read nor written: an admin tests a deployment even while it cools
down, and a failed test does not take it out of service.
"""

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson
from asgiref.sync import async_to_sync

from api.accounting import RequestAccount
from api.endpoints.chat import CHAT
from api.errors import REJECTIONS, GatewayError, as_gateway_error
from api.failover import call_model
from api.pipeline import unexpected_failure
from api.schemas import parse_chat_request
from routing.health import DeploymentHealth
from routing.load import DeploymentLoad
from routing.models import AllowedModel, Deployment
from routing.policy import ModelPolicy, PolicySnapshot, build_policy_snapshot, deployment_policy
from routing.resolver import resolve, served_by
from usage.recorder import write_rows

PROMPT = "Say hello."
# How the result names the path an answer took (api.pipeline.Endpoint.call_for).
PATH_NAMES = {"relay": "relay", "translated": "translated (LiteLLM's provider configuration)", "litellm": "LiteLLM"}


@dataclass(frozen=True)
class TestRequestResult:
    model: str
    deployment: str  # the deployment that answered (or was tried last)
    status: int
    answer: str  # the answer's text (status 200)
    error: str  # the error body as a caller gets it, indented (status >= 400)
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None
    attempts: int
    path: str  # "relay" or "LiteLLM", as the policy routes the deployment
    request_id: str  # the admin request's id ("-" outside the ASGI server), as the request log has it

    @property
    def ok(self) -> bool:
        return self.status < 400


class RowCollector:
    """Stands in for the gateway's usage recorder: the row is written right after the call, synchronously."""

    def __init__(self, key_name: str) -> None:
        self.key_name = key_name
        self.rows: list[dict[str, Any]] = []

    def record(self, row: dict[str, Any]) -> None:
        self.rows.append({**row, "key_name": self.key_name[:100], "admin_test": True})


class AdminTestCollaborators:
    """What RequestAccount and the call step use of the gateway: a private health and load (nothing shared)."""

    def __init__(self, key_name: str) -> None:
        self.usage = RowCollector(key_name)
        self.health = DeploymentHealth()
        self.load = DeploymentLoad()
        self.limits = None  # no key, no limit hold


def send_test_request(*, model: AllowedModel, deployment: Deployment | None, username: str,
                      own_loop: bool) -> TestRequestResult:  # fmt: skip
    """Send PROMPT to `model` (or only its `deployment`) and write its usage row. `own_loop`: the call runs on an
    event loop made for it (a WSGI request), whose relay session is closed afterwards; under ASGI it runs on the
    server's loop and shares its connection pool."""
    body = orjson.dumps({"model": model.name, "messages": [{"role": "user", "content": PROMPT}]})
    parsed = parse_chat_request(body)
    chosen = None
    if deployment is None:
        snapshot = build_policy_snapshot()
    else:
        chosen = deployment_policy(model, deployment)
        snapshot = PolicySnapshot(models={model.name: replace(chosen, deployments=(chosen,))})
    collaborators = AdminTestCollaborators(f"admin test: {username}")
    status, raw, account = async_to_sync(call)(parsed, snapshot, chosen, collaborators, own_loop)
    write_rows(collaborators.usage.rows)
    return result_of(
        model.name, status, raw, account, collaborators.usage.rows[-1] if collaborators.usage.rows else account.as_row()
    )


async def call(parsed: Any, snapshot: PolicySnapshot, chosen: ModelPolicy | None,
               collaborators: AdminTestCollaborators, own_loop: bool) -> tuple[int, bytes, RequestAccount]:  # fmt: skip
    account = RequestAccount(collaborators, CHAT)  # type: ignore[arg-type]  # the gateway's parts it uses
    account.requested_model, account.request = parsed.model, parsed
    try:
        response = await answer(parsed, snapshot, chosen, collaborators, account)
    except Exception as exc:
        error = as_gateway_error(exc) if isinstance(exc, REJECTIONS) else unexpected_failure(exc)
        account.fail(error, rejected=not error.from_provider and error.status < 500)
        account.finish()
        return error.status, CHAT.error_body(error), account
    finally:
        if own_loop:
            from api.relay import relay

            await relay.close()  # this loop's session only; the loop ends with this call
    account.finish()
    return response.status_code, response.content, account


async def answer(parsed: Any, snapshot: PolicySnapshot, chosen: ModelPolicy | None,
                 collaborators: AdminTestCollaborators, account: RequestAccount):  # fmt: skip
    route = resolve(snapshot, requested_model=parsed.model, params=parsed.params, extra=parsed.extra_body,
                    token_fields=CHAT.token_fields)  # fmt: skip
    account.route = route
    if chosen is None:  # the model's deployments in their normal order, failing over as for a caller
        return await call_model(CHAT, route, parsed, account, collaborators.health, collaborators.load)
    attempt = served_by(route, chosen)  # one attempt, at the chosen deployment only
    account.attempt(attempt)
    try:
        return await CHAT.call_for(attempt)[1](attempt, parsed, account)
    except GatewayError:
        account.attempt_failed()
        raise


def result_of(model_name: str, status: int, raw: bytes, account: RequestAccount,
              row: dict[str, Any]) -> TestRequestResult:  # fmt: skip
    answer, error = "", ""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if status < 400 and isinstance(data, dict):
        choices = data.get("choices") or [{}]
        answer = str(((choices[0] or {}).get("message") or {}).get("content") or "")
    elif status >= 400:
        error = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() if data is not None else raw.decode()
    route = account.route
    return TestRequestResult(
        model=model_name,
        deployment=route.model.deployment if route else "",
        status=status,
        answer=answer,
        error=error,
        latency_ms=row["latency_ms"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cost_usd=row["cost_usd"],
        attempts=account.attempts,
        path=PATH_NAMES[CHAT.call_for(route)[0]] if route else "",
        request_id=row["request_id"],
    )
