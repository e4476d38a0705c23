"""GET /metrics: Prometheus's text format, behind `Authorization: Bearer $LLMPROXY_METRICS_TOKEN` when that is set.

The view is made around the function that reads the scrape-time state (api/metrics_state.py), so that this app
imports none of the apps it reports on.
"""

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST

from telemetry import metrics

logger = logging.getLogger(__name__)

StateReader = Callable[[], Awaitable[metrics.ScrapeState]]


def metrics_view(read_state: StateReader) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
    async def view(request: HttpRequest) -> HttpResponse:
        if request.method != "GET":
            return error(405, f"Invalid method for URL ({request.method} {request.path}): use GET.",
                         "method_not_allowed", {"Allow": "GET"})  # fmt: skip
        if not authorized(request):
            return error(401, "Send 'Authorization: Bearer <LLMPROXY_METRICS_TOKEN>' to read the metrics.",
                         "invalid_metrics_token", {"WWW-Authenticate": 'Bearer realm="metrics"'})  # fmt: skip
        try:
            state = await read_state()
        except Exception:  # the recorded metrics are worth answering without the scrape-time state
            logger.exception("could not read the scrape-time state for /metrics")
            state = metrics.ScrapeState()
        body = await asyncio.to_thread(metrics.exposition, state)  # reads every worker's files
        return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)

    return csrf_exempt(view)  # a POST gets the 405, not a CSRF page


def authorized(request: HttpRequest) -> bool:
    token = settings.LLMPROXY_METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def error(status: int, message: str, code: str, headers: dict[str, str]) -> HttpResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response
