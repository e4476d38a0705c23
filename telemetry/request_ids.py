"""Request ids: one per HTTP request, taken from the caller's `x-request-id` when it is safe to repeat, returned on
every answer, stored on the request's log row and put on every log line made while the request is served.

The id lives in a contextvar set at the ASGI edge, before anything else runs: Django's tasks and asgiref's threads
copy the context, so every log line of the request (the view, the database thread, the provider call) carries it
without being handed it. A background task started from a request copies it too, so a long-lived one (the usage
flusher) must be started with a fresh context (`contextvars.Context()`).

A caller's id is repeated in the answer, the logs and the database, so only a short, plain one is accepted
([A-Za-z0-9._:-], 1 to 128 characters); anything else (too long, spaces, control characters, a header injection
attempt) is replaced by a new id, never echoed.
"""

import logging
import re
import uuid
from contextvars import ContextVar

HEADER = b"x-request-id"
OUTSIDE_A_REQUEST = "-"
VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

_current: ContextVar[str] = ContextVar("llmproxy_request_id", default=OUTSIDE_A_REQUEST)


def current_request_id() -> str:
    """The id of the request being served, or "-" outside a request."""
    return _current.get()


def request_id_from(headers) -> str:
    """The caller's id (the first `x-request-id` header) when valid, else a new one (uuid4 hex)."""
    for name, value in headers:
        if name == HEADER:
            if VALID_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


async def with_request_id(app, scope, receive, send) -> None:
    """Serve an HTTP request under its id (see the module docstring), with `x-request-id` on its answer."""
    request_id = request_id_from(scope["headers"])
    header = (HEADER, request_id.encode("ascii"))

    async def send_with_id(message) -> None:
        if message["type"] == "http.response.start":
            headers = [item for item in message.get("headers", ()) if item[0].lower() != HEADER]
            headers.append(header)
            message = {**message, "headers": headers}
        await send(message)

    token = _current.set(request_id)
    try:
        await app(scope, receive, send_with_id)
    finally:
        _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record as `request_id` ("-" outside a request), for the formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current.get()
        return True
