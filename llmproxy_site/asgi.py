"""ASGI entry point: request limits (api.edge), Django, static files for the admin (servestatic), the lifespan."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmproxy_site.settings")

django_application = get_asgi_application()

from servestatic import ServeStaticASGI  # noqa: E402

from api.edge import limited  # noqa: E402
from api.gateway import gateway  # noqa: E402
from api.provider import warm_up  # noqa: E402

static_application = ServeStaticASGI(django_application, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL)


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    if scope["type"] == "http":
        await limited(static_application, scope, receive, send)
        return
    await static_application(scope, receive, send)


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
