from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "OpenAI-compatible API"

    def ready(self) -> None:
        from django.core.signals import request_started
        from django.db import close_old_connections

        # Under ASGI this sync receiver costs every request a thread hop before the view runs, and it has nothing
        # to do: each request starts in a fresh thread context, and the API's queries release their connection
        # themselves (llmproxy_site.dbthread). request_finished keeps it, closing what sync views (the admin) opened.
        request_started.disconnect(close_old_connections)
