"""Database work off the event loop, outside any request: the thread's connection is released afterwards."""

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

T = TypeVar("T")


def _run_and_release(fn: Callable[..., T], *args: Any) -> T:
    close_old_connections()
    try:
        return fn(*args)
    finally:
        connection.close()  # back to the pool (PostgreSQL) or closed (SQLite); never held by an idle thread


async def run_in_db_thread(fn: Callable[..., T], *args: Any) -> T:
    return await sync_to_async(_run_and_release, thread_sensitive=False)(fn, *args)
