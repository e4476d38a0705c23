"""ASGI entry point: the request id (telemetry.request_ids), request limits (api.edge), Django, static files for
the admin (servestatic), the lifespan (tracing set up, the policy warmed, buffers flushed on a graceful stop)."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmproxy_site.settings")

django_application = get_asgi_application()

from servestatic import ServeStaticASGI  # noqa: E402

from api.edge import limited  # noqa: E402
from api.gateway import gateway  # noqa: E402
from api.provider import warm_up  # noqa: E402
from telemetry import tracing  # noqa: E402
from telemetry.request_ids import with_request_id  # noqa: E402

static_application = ServeStaticASGI(django_application, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL)


async def served(scope, receive, send) -> None:
    await limited(static_application, scope, receive, send)


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    if scope["type"] == "http":
        await with_request_id(served, scope, receive, send)  # outermost: even a refused request gets its id
        return
    await static_application(scope, receive, send)


async def run_lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            tracing.setup()  # per worker process: each exports its own spans
            await warm_up(gateway)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await gateway.shutdown()  # flush the usage buffer: a graceful stop loses no row
            tracing.shutdown()  # export the spans still batched (after the last usage write's)
            await send({"type": "lifespan.shutdown.complete"})
            return
