"""ASGI entry point: Django, static files for the admin (servestatic, native ASGI), request limits, the lifespan."""

import os

import orjson
from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmproxy_site.settings")

django_application = get_asgi_application()

from servestatic import ServeStaticASGI  # noqa: E402

from api.accounting import RequestAccount  # noqa: E402
from api.errors import GatewayError  # noqa: E402
from api.gateway import gateway  # noqa: E402
from api.provider import warm_up  # noqa: E402

static_application = ServeStaticASGI(django_application, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL)


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    if scope["type"] == "http":
        await limited(scope, receive, send)
        return
    await static_application(scope, receive, send)


CHAT_COMPLETIONS_PATH = "/v1/chat/completions"

# Request limits, enforced here so that they hold whatever the HTTP parser (httptools, h11) accepts, and before
# Django reads (and spools) a body it would refuse anyway.


async def limited(scope, receive, send) -> None:
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
        await static_application(scope, receive, send)
    elif content_length is not None:
        if content_length.isdigit() and int(content_length) > body_limit:
            await drain(receive, body_limit)
            await refuse(scope, send, body_too_large(body_limit))
            return
        await static_application(scope, receive, send)
    else:  # a chunked body: count it as it arrives
        await static_application(scope, *counted(scope, receive, send, body_limit))


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"The request body is larger than {limit} bytes.", code="request_too_large")


async def refuse(scope, send, error: GatewayError) -> None:
    """Answer `error`; a refused chat completion still leaves its (rejected) row in the request log."""
    if scope["path"] == CHAT_COMPLETIONS_PATH:
        account = RequestAccount(gateway)
        account.fail(error, rejected=True)
        account.finish()
    await send_error(send, error)


async def send_error(send, error: GatewayError) -> None:
    body = orjson.dumps(error.as_dict())
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


async def run_lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await warm_up(gateway)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await gateway.shutdown()  # flush the usage buffer: a graceful stop loses no row
            await send({"type": "lifespan.shutdown.complete"})
            return
