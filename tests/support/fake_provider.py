"""A fake model provider: a real HTTP server on loopback speaking the OpenAI and Anthropic wire formats.

It records every request, answers deterministically (see fake_wire.py) and fails on demand:

    provider.fail_next("status", status=429, headers={"retry-after": "7"})  # an error status (wire-format body)
    provider.fail_next("slow", delay=5)        # wait before the response headers
    provider.fail_next("cut", after=2)         # stream: N content chunks, then the connection drops (no [DONE]);
                                               # non-stream: headers and half a body, then the connection drops
    provider.fail_next("invalid_json")         # 200 with a body that is not JSON (or an SSE line that is not)
    provider.fail_next("stream_error")         # stream: one chunk, then an error event, then the end
    provider.fail_next("hang")                 # never answer

`disconnects` counts requests whose client went away before the answer was complete.
Run standalone: python -m tests.support.fake_provider --port 9000
"""

import argparse
import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

from tests.support import fake_wire as wire


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class ProviderCut(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-response."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeProvider:
    def __init__(self, port: int = 0) -> None:
        self.port = port or _free_port()
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.chunk_delay = 0.0
        self.stream_chunks: int | None = None
        self._faults: deque[tuple[str, dict[str, Any]]] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- control -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base(self) -> str:
        return self.url

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def fail_next(self, kind: str, **options: Any) -> None:
        assert kind in {"status", "slow", "cut", "invalid_json", "stream_error", "hang"}, kind
        with self._lock:
            self._faults.append((kind, options))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.disconnects = 0

    def _config(self, log_level: str = "critical") -> uvicorn.Config:
        return uvicorn.Config(self, host="127.0.0.1", port=self.port, lifespan="off", log_level=log_level,
                              access_log=False, timeout_graceful_shutdown=1)  # fmt: skip

    def start(self) -> "FakeProvider":
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, name="fake-provider", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- ASGI ----------------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(self._watch_disconnect(receive, disconnected))
        try:
            await self._handle(scope, raw, send, disconnected)
        finally:
            watcher.cancel()

    async def _watch_disconnect(self, receive, disconnected: asyncio.Event) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                return

    def _count_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    async def _handle(self, scope: dict, raw: bytes, send, disconnected: asyncio.Event) -> None:
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/v1/models":
            await self._json(send, 200, {"object": "list", "data": [{"id": "fake-model", "object": "model",
                                                                      "created": 0, "owned_by": "fake"}]})  # fmt: skip
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        with self._lock:
            self.requests.append(RecordedRequest(path=path, headers=headers, body=body or {}))
            fault = self._faults.popleft() if self._faults else None
        anthropic = path == "/v1/messages"
        if path not in ("/v1/chat/completions", "/v1/messages") or method != "POST":
            await self._json(send, 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})
            return
        if not isinstance(body, dict):
            await self._json(send, 400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error",
                                                   "param": None, "code": None}})  # fmt: skip
            return
        kind, options = fault or (None, {})
        if kind in ("slow", "hang"):
            delay = options.get("delay", 3600) if kind == "slow" else 3600
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(disconnected.wait(), timeout=delay)
            if disconnected.is_set():
                self._count_disconnect()
                return
        if kind == "status":
            await self._error_status(send, options, anthropic)
            return
        stream = bool(body.get("stream"))
        if kind == "invalid_json":
            if stream:
                await self._sse_start(send)
                await send({"type": "http.response.body", "body": b"data: {not json\n\n", "more_body": False})
            else:
                await self._raw(send, 200, b"{this is not json", "application/json")
            return
        if anthropic:
            plan = wire.anthropic_plan(body)
            if not stream:
                await self._cut_or_json(send, wire.anthropic_message(body, plan), kind, options)
                return
            events = [f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"
                      for name, data in wire.anthropic_events(body, plan)]  # fmt: skip
            error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"fake mid-stream error"}}\n\n'  # noqa: E501
            await self._stream(send, events, kind, options, disconnected, error_event=error, done=None)
            return
        plan = wire.openai_plan(body)
        if not stream:
            await self._cut_or_json(send, wire.openai_completion(body, plan), kind, options)
            return
        events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in wire.openai_chunks(body, plan, self.stream_chunks)]
        error = b'data: {"error": {"message": "fake mid-stream error", "type": "server_error", "param": null, "code": null}}\n\n'  # noqa: E501
        await self._stream(send, events, kind, options, disconnected, error_event=error, done=b"data: [DONE]\n\n")

    async def _stream(self, send, events: list[bytes], kind: str | None, options: dict, disconnected: asyncio.Event,
                      *, error_event: bytes, done: bytes | None) -> None:  # fmt: skip
        await self._sse_start(send)
        if kind == "cut":
            events = events[: 1 + options.get("after", 2)]
        elif kind == "stream_error":
            events = [*events[:2], error_event]
        elif done:
            events = [*events, done]
        for index, event in enumerate(events):
            if disconnected.is_set():
                self._count_disconnect()
                return
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if self.chunk_delay and index < len(events) - 1:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(disconnected.wait(), timeout=self.chunk_delay)
        if kind == "cut":
            raise ProviderCut("cut on demand")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _cut_or_json(self, send, payload: dict, kind: str | None, options: dict) -> None:
        if kind != "cut":
            await self._json(send, 200, payload)
            return
        body = orjson.dumps(payload)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise ProviderCut("cut on demand")

    async def _error_status(self, send, options: dict, anthropic: bool) -> None:
        status = options.get("status", 500)
        body = options.get("body")
        if body is None and anthropic:
            body = {"type": "error", "error": {"type": "api_error", "message": f"fake provider error {status}"}}
        elif body is None:
            body = {"error": {"message": f"fake provider error {status}", "type": "server_error", "param": None,
                              "code": None}}  # fmt: skip
        await self._json(send, status, body, extra_headers=options.get("headers") or {})

    async def _sse_start(self, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})  # fmt: skip

    async def _json(self, send, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        await self._raw(send, status, orjson.dumps(payload), "application/json", extra_headers)

    async def _raw(self, send, status: int, body: bytes, content_type: str,
                   extra_headers: dict[str, str] | None = None) -> None:  # fmt: skip
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), str(v).encode()) for k, v in (extra_headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake OpenAI/Anthropic provider.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--stream-chunks", type=int, default=None, help="split every streamed reply into N chunks")
    args = parser.parse_args()
    provider = FakeProvider(port=args.port)
    provider.stream_chunks = args.stream_chunks
    server = uvicorn.Server(provider._config(log_level="warning"))
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    print(f"fake provider listening on {provider.url}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
