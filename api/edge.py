"""Request limits at the ASGI edge: they hold whatever the HTTP parser (httptools, h11) accepts, and a body that
would be refused is never read (and spooled) by Django.
"""

import orjson
from django.conf import settings

from api.accounting import RequestAccount
from api.endpoints import ENDPOINTS_BY_PATH
from api.errors import GatewayError, body_too_large
from api.gateway import gateway


async def limited(app, scope, receive, send) -> None:
    """Pass the request on to `app` unless its headers or body are over the limits."""
    header_limit = settings.LLMPROXY_MAX_HEADER_BYTES
    body_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    header_bytes = 0
    content_length = None
    for name, value in scope["headers"]:
        header_bytes += len(name) + len(value)
        if name == b"content-length":
            content_length = value
    if header_limit and header_bytes > header_limit:
        message = f"The request headers are larger than {header_limit} bytes."
        await refuse(scope, send, GatewayError(431, message, code="request_headers_too_large"))
        return
    if body_limit is None:
        await app(scope, receive, send)
    elif content_length is not None:
        if content_length.isdigit() and int(content_length) > body_limit:
            await drain(receive, body_limit)
            await refuse(scope, send, body_too_large(body_limit))
            return
        await app(scope, receive, send)
    else:  # a chunked body: count it as it arrives
        await app(scope, *counted(scope, receive, send, body_limit))


async def refuse(scope, send, error: GatewayError) -> None:
    """Answer `error` in the endpoint's error shape; a refused API request still leaves its (rejected) row."""
    endpoint = ENDPOINTS_BY_PATH.get(scope["path"])
    if endpoint is not None:
        account = RequestAccount(gateway, endpoint)
        account.fail(error, rejected=True)
        account.finish()
    await send_error(send, error, body=None if endpoint is None else endpoint.error_body(error))


async def send_error(send, error: GatewayError, *, body: bytes | None = None) -> None:
    body = orjson.dumps(error.as_dict()) if body is None else body
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def drain(receive, limit: int) -> None:
    """Read (and drop) up to about `limit` bytes of an oversized body, so that most clients see the answer."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
        seen += len(message.get("body", b""))


def counted(scope, receive, send, limit: int):
    """receive/send for the app that answer 413 (and end the app's request) once the body passes `limit` bytes."""
    state = {"seen": 0, "refused": False}

    async def counting_receive():
        message = await receive()
        if message["type"] == "http.request":
            state["seen"] += len(message.get("body", b""))
            if state["seen"] > limit and not state["refused"]:
                state["refused"] = True
                await refuse(scope, send, body_too_large(limit))
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message):
        if not state["refused"]:
            await send(message)

    return counting_receive, guarded_send
