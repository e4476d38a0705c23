"""The pipeline's call step: a model's deployments in the order routing.deployments gives, then its fallbacks.

A deployment that fails with a provider 429, 5xx, timeout or connection error before the first byte reached the
client is recorded (routing.health: enough failures, or a 429 with Retry-After, cool it down) and the next one is
tried; the adapters return only once the provider's first byte is in hand, so nothing is retried after it. A
provider's 400 is the caller's problem and ends the call, except a context-window refusal, which goes to the model's
`context_window_fallbacks` (not its other deployments: they share the window). When every deployment failed, the
model's `fallbacks` are tried in order, each with its own cap; the key's allowlist is not asked again (the admin
chose them). A fallback model's own fallbacks are not followed: one level, so a loop cannot form.
"""

import logging
import math
import random
import time
from typing import TYPE_CHECKING, Any

from django.http import HttpResponse

from api.accounting import RequestAccount
from api.errors import GatewayError
from api.provider_errors import CONTEXT_WINDOW_EXCEEDED
from routing.deployments import attempt_order, cooldown_remaining
from routing.health import DeploymentHealth
from routing.load import DeploymentLoad
from routing.policy import PolicySnapshot
from routing.resolver import ParameterRefused, Route, fallback_route, served_by
from telemetry import metrics, tracing

if TYPE_CHECKING:
    from api.pipeline import Endpoint

logger = logging.getLogger(__name__)

COOLING_DOWN = "deployment_cooling_down"
AT_CAPACITY = "deployment_rate_limited"  # every deployment reached its own rpm/tpm this minute
NOT_SERVED_NOW = frozenset({COOLING_DOWN, AT_CAPACITY})
FAILOVER_STATUSES = frozenset({429, 500, 502, 503, 504})  # what the adapters raise for 429, 5xx, timeouts, network

_rng = random.Random()


def fails_over(error: GatewayError) -> bool:
    """A failure of the deployment, not of the request: another deployment may well answer."""
    return error.from_provider and error.status in FAILOVER_STATUSES


def retry_after_seconds(error: GatewayError) -> float | None:
    value = error.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # an HTTP date: counted as a plain failure
        return None
    return seconds if seconds is not None and seconds > 0 and math.isfinite(seconds) else None


async def call_with_failover(endpoint: "Endpoint", route: Route, parsed: Any, account: RequestAccount, *,
                             snapshot: PolicySnapshot, health: DeploymentHealth,
                             load: DeploymentLoad) -> HttpResponse:  # fmt: skip
    """The endpoint's answer from the first deployment (of the model, then of its fallbacks) that gives one."""
    await health.refresh_if_stale()
    try:
        return await call_model(endpoint, route, parsed, account, health, load)
    except GatewayError as error:
        if error.code == CONTEXT_WINDOW_EXCEEDED:
            fallbacks = route.model.context_window_fallbacks
        elif fails_over(error) or error.code in NOT_SERVED_NOW:
            fallbacks = route.model.fallbacks
        else:
            raise
        last_error = error
    for name in fallbacks:
        try:
            fallback = fallback_route(snapshot, route, name)
        except ParameterRefused:  # the fallback refuses a field the caller sent: not a candidate
            continue
        if fallback is None or fallback.model.name == route.model.name:
            continue
        account.fallback_model = fallback.model.name
        try:
            return await call_model(endpoint, fallback, parsed, account, health, load)
        except GatewayError as error:
            if not (fails_over(error) or error.code in NOT_SERVED_NOW or error.code == CONTEXT_WINDOW_EXCEEDED):
                raise
            last_error = error
    raise last_error


async def call_model(endpoint: "Endpoint", route: Route, parsed: Any, account: RequestAccount, health: DeploymentHealth,
                     load: DeploymentLoad) -> HttpResponse:  # fmt: skip
    """Each deployment of `route.model` in turn until one answers (see the module docstring)."""
    deployments = route.model.deployments or (route.model,)
    cooldowns = health.cooldowns()
    saturated = load.saturated(deployments)
    now = time.time()
    order = attempt_order(deployments, cooldowns, now, _rng, saturated)
    if not order:
        if len(saturated) == len(deployments):
            raise at_capacity(route, 60 - now % 60)
        raise cooling_down(route, cooldown_remaining(deployments, cooldowns, now))
    last_error: GatewayError | ParameterRefused | None = None
    for deployment in order:
        try:
            attempt = route if deployment.deployment_id == route.model.deployment_id else served_by(route, deployment)
        except ParameterRefused as refusal:  # this deployment's provider cannot take a field the caller sent
            last_error = last_error or refusal
            continue
        if account.attempts and account.route is not None:  # the attempt before this one failed: a failover
            metrics.failed_over(**metric_labels(account.route))
        account.attempt(attempt)
        await load.note_request(deployment)
        try:
            if account.trace_span is not None:
                return await traced_call(endpoint, attempt, parsed, account)
            return await endpoint.call_for(attempt)[1](attempt, parsed, account)
        except GatewayError as error:
            account.attempt_failed()
            if error.from_provider:
                metrics.provider_failed(**metric_labels(attempt), status=error.status, code=error.code or error.type)
            if not fails_over(error):
                raise
            logger.warning("provider call failed: model %s, deployment %s, attempt %s: %s %s", route.model.name,
                           attempt.model.deployment or attempt.model.name, account.attempts, error.status,
                           error.code or error.type)  # fmt: skip
            ends = await health.record_failure(deployment.deployment_id, retry_after=retry_after_seconds(error))
            if ends is not None:
                metrics.cooldown_started(**metric_labels(attempt), ends=ends)
            last_error = error
    assert last_error is not None
    raise last_error


async def traced_call(endpoint: "Endpoint", route: Route, parsed: Any, account: RequestAccount) -> HttpResponse:
    """One attempt as the llmproxy.provider_call span (tracing on): until the answer, or its first byte, is in hand."""
    path, call = endpoint.call_for(route)
    attributes = {"llmproxy.attempt": account.attempts, "llmproxy.model": route.model.name,
                  "llmproxy.deployment": route.model.deployment or route.model.name,
                  "llmproxy.provider": route.model.provider,
                  "llmproxy.path": path}  # fmt: skip
    with tracing.span("llmproxy.provider_call", account.trace_span, client=True, **attributes) as span:
        try:
            response = await call(route, parsed, account)
        except GatewayError as error:
            span.set_attributes({"http.response.status_code": error.status, "error.type": error.code or error.type})
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        return response


def metric_labels(route: Route) -> dict[str, str]:
    """The labels of the deployment an attempt went to (telemetry.metrics)."""
    return {"model": route.model.name, "deployment": route.model.deployment, "provider": route.model.provider or ""}


def cooling_down(route: Route, seconds: float) -> GatewayError:
    return not_served_now(503, "failed recently and is cooling down", route, seconds, type="api_error",
                          code=COOLING_DOWN)  # fmt: skip


def at_capacity(route: Route, seconds: float) -> GatewayError:
    return not_served_now(429, "reached its requests or tokens per minute", route, seconds,
                          type="rate_limit_exceeded", code=AT_CAPACITY)  # fmt: skip


def not_served_now(status: int, why: str, route: Route, seconds: float, *, type: str, code: str) -> GatewayError:
    """No deployment of the model may be called for `seconds`: the caller is told when to come back."""
    wait = max(1, math.ceil(seconds))
    message = f"Every deployment of the model '{route.requested_model}' {why}; try again in {wait} s."
    return GatewayError(status, message, type=type, code=code, headers={"Retry-After": str(wait)})
