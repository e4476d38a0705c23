"""Database work off the event loop, releasing the connection at once.

Django's async ORM runs queries in the request's thread and keeps that connection until the request ends; on the
hot path that would hold a pooled connection for the whole provider call (and a burst of requests could exhaust the
pool while each waits for another query). Every hot-path and background query goes through here instead.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

T = TypeVar("T")


def _run_and_release(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        connection.close()  # back to the pool (PostgreSQL) or closed (SQLite); never held by an idle thread


async def run_in_db_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await sync_to_async(_run_and_release, thread_sensitive=False)(fn, *args, **kwargs)
