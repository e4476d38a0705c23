"""One request the fake provider is answering: its HTTP exchange, noticing the client going away meanwhile."""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


class Provider(Protocol):
    chunk_delay: float

    def _count_disconnect(self) -> None: ...


class Interrupted(Exception):
    """The client went away, or the provider is stopping: drop this request."""


class Exchange:
    """One request being answered; notices the client going away while the answer is pending."""

    def __init__(self, provider: Provider, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        self.provider, self.receive, self.raw_send, self.headers = provider, receive, send, headers
        self.interrupted = asyncio.Event()
        self.finished = False
        self.gone = False
        self.watcher = asyncio.create_task(self.watch())

    async def watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.client_gone()

    def client_gone(self) -> None:
        if not self.finished and not self.gone:
            self.gone = True
            self.provider._count_disconnect()
        self.interrupted.set()

    async def wait(self, seconds: float | None) -> None:
        if seconds is not None and seconds <= 0:
            await asyncio.sleep(0)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.interrupted.wait(), seconds)
        if self.interrupted.is_set():
            raise Interrupted

    async def send(self, message: dict) -> None:
        if message.get("type") == "http.response.body" and not message.get("more_body"):
            self.finished = True
        try:
            await self.raw_send(message)
        except Exception as exc:
            if isinstance(exc, OSError) or type(exc).__name__ == "ClientDisconnected":
                self.client_gone()
                raise Interrupted from exc
            raise
        if self.interrupted.is_set() and not self.finished:
            raise Interrupted

    async def respond(self, status: int, body: bytes, content_type: bytes, headers: dict | None = None) -> None:
        extra = [(str(k).lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
        start = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
        await self.send({"type": "http.response.start", "status": status, "headers": start})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def json(self, status: int, payload: Any, headers: dict | None = None, indent: bool = False) -> None:
        """`indent`: as OpenAI's API sends its error bodies (4 spaces, a final newline), which LiteLLM's checks for
        '"code": "context_length_exceeded"' rely on."""
        data = (json.dumps(payload, indent=4) + "\n").encode() if indent else orjson.dumps(payload)
        await self.respond(status, data, b"application/json", headers)

    async def stream(self, events: list[bytes], complete: bool = True, stall: bool = False) -> None:
        await self.send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        for index, event in enumerate(events):
            if index:
                await self.wait(self.provider.chunk_delay)
            await self.send({"type": "http.response.body", "body": event, "more_body": True})
        if stall:
            await self.wait(None)  # until the client gives up
        if complete:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await self.drop_connection()

    async def drop_connection(self) -> None:
        """Close the socket under uvicorn's feet: no (further) bytes, no 500, no error log."""
        self.finished = True
        transport = getattr(getattr(self.raw_send, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionAbortedError("the fake provider drops this connection")
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.watcher), 2)
