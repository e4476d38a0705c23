"""A fake model provider: a real HTTP server on loopback speaking the OpenAI and Anthropic wire formats.

    with FakeProvider() as provider:           # or provider = FakeProvider().start() ... provider.stop()
        provider.openai_base                   # http://127.0.0.1:PORT/v1  (POST /chat/completions, /embeddings,
                                               #   /responses, GET /models)
        provider.anthropic_base                # http://127.0.0.1:PORT     (POST /v1/messages)
        provider.requests, provider.last_request, provider.disconnects, provider.reset()

Replies are deterministic. One module per wire format keeps that provider's contract, documented in its docstring:
fake_wire.py (shared reply rules, OpenAI Chat Completions), fake_embeddings.py, fake_responses.py (the Responses
API and its in-memory store: `provider.responses.stored`), fake_anthropic.py; fake_formats.py maps routes to them.
Faults, queued FIFO, each consumed by the next request to a known route, in that route's wire format:

    provider.fail_next("status", status=429, headers={"retry-after": "7"})  # error status, wire-format body
    provider.fail_next("slow", delay=5)       # wait before the response headers, then answer normally
    provider.fail_next("cut", after=2)        # stream: headers, the role chunk and N content chunks, then the socket
                                              # closes: httpx raises RemoteProtocolError "incomplete chunked read";
                                              # non-stream: the socket closes before any byte of a response, httpx
                                              # raises RemoteProtocolError "Server disconnected without sending ..."
    provider.fail_next("invalid_json")        # 200 with a body that is not JSON (stream: one SSE line that is not)
    provider.fail_next("stream_error")        # stream: one content chunk, then an error event (Responses: `error`
                                              # then `response.failed`; non-stream: a 500)
    provider.fail_next("hang")                # never answer
    provider.fail_next("stall", after=2)      # stream: headers, the role chunk and N content chunks, then silence
    provider.fail_next("big_line", size=N)    # stream: after the role chunk, one content delta of N characters in
                                              # ONE SSE line (a base64 image/audio delta), then the normal reply
                                              # (Chat Completions and Responses; Anthropic answers normally)
    provider.fail_always("status", status=500)  # any fault above, on EVERY request to a known route (after the
                                              # queued ones) until provider.heal() or reset(): a dead deployment

Provider behaviours the fake models (each as the provider documents it; the README lists them too):
- OpenAI: an id the provider does not serve is a 404 `model_not_found` with OpenAI's error body (served: ids
  starting with "fake-" and `wire.OPENAI_SERVED_IDS`), so a model id still carrying LiteLLM's `hosted_vllm/`
  prefix is caught (https://platform.openai.com/docs/guides/error-codes).
- OpenAI: o-series and gpt-5 ids refuse `max_tokens` with 400 `unsupported_parameter`; they take
  `max_completion_tokens` (https://platform.openai.com/docs/guides/reasoning, "max_completion_tokens").
- OpenAI: `n` choices, `stop`, `max_tokens`/`max_completion_tokens` shape the reply
  (https://platform.openai.com/docs/api-reference/chat/create).
- OpenAI embeddings: `input` as a string, strings, token arrays; `encoding_format` float or base64 (little-endian
  float32); `dimensions` for text-embedding-3 ids only; deterministic unit vectors; OpenAI's 400 bodies (see
  fake_embeddings.py; https://platform.openai.com/docs/api-reference/embeddings/create).
- OpenAI Responses: input items, instructions, function tools, `max_output_tokens` >= 16, stored responses and
  `previous_response_id`, typed SSE events with sequence numbers, usage with cached and reasoning tokens (see
  fake_responses.py; https://platform.openai.com/docs/api-reference/responses).
- Anthropic: an unknown top-level field is a 400 `invalid_request_error` "<field>: Extra inputs are not permitted",
  and `max_tokens` is required ("max_tokens: Field required") (https://docs.anthropic.com/en/api/messages,
  https://docs.anthropic.com/en/api/errors); the key (`x-api-key` or Bearer) and `anthropic-version` headers are
  required; a non-Claude id is a 404; cache usage fields are always present (see fake_anthropic.py).
- Both: server-sent events of any line length (a "big_line" fault sends a delta line of several MiB).
- Context windows: an id containing "-small-context" has a window of 1000 tokens (a prompt counts characters / 4);
  a longer prompt is refused as each provider refuses it: Chat Completions 400 `context_length_exceeded` "This
  model's maximum context length is N tokens. However, your messages resulted in M tokens. ..." (param "messages";
  https://platform.openai.com/docs/guides/error-codes), Responses 400 `context_length_exceeded` (param "input"),
  Anthropic 400 `invalid_request_error` "prompt is too long: M tokens > N maximum"
  (https://docs.anthropic.com/en/docs/build-with-claude/context-windows). LiteLLM maps both texts to
  ContextWindowExceededError (litellm_core_utils/exception_mapping_utils.py).
- Rate limits: a 429 is OpenAI's `{"type": "requests", "code": "rate_limit_exceeded"}` or Anthropic's
  `rate_limit_error`, with the `retry-after` header the fault names
  (https://platform.openai.com/docs/guides/rate-limits, https://docs.anthropic.com/en/api/rate-limits).
- OpenAI's error bodies come indented by 4 spaces with a final newline, as OpenAI's API sends them (LiteLLM finds
  '"code": "context_length_exceeded"' in that text); Anthropic's are compact.

Faults are consumed only by requests to a known route. "cut" closes the transport behind uvicorn's `send`
(the real socket, as a crashed provider would), so uvicorn sends no 500 and logs nothing.
`disconnects` counts requests whose client went away before the answer was complete (during "slow", "hang",
"stall", or between streamed chunks: set `chunk_delay`); `disconnect_times` holds when (time.monotonic()).
`stream_chunks = N` splits every streamed text into N chunks.
Standalone: python -m tests.support.fake_provider --port 9000 (--port 0: any free port, printed). Every fake also
answers its control routes under /_fake/ (not recorded, no provider serves that path): fake_control.py, whose
FakeProviderProcess drives a standalone fake with the same methods as this class.
"""

import argparse
import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import count
from typing import Any

import orjson
import uvicorn

from tests.support import fake_wire as wire
from tests.support.fake_control import CONTROL_PREFIX, FakeProviderAddress, answer_control
from tests.support.fake_exchange import Exchange, Interrupted, Receive, Send
from tests.support.fake_formats import wire_formats
from tests.support.fake_responses import ResponsesApi

FAULT_KINDS = frozenset({"status", "slow", "cut", "invalid_json", "stream_error", "hang", "stall", "big_line"})
ROUTES = {
    ("POST", "/v1/chat/completions"): "openai",
    ("POST", "/v1/messages"): "anthropic",
    ("POST", "/v1/embeddings"): "embeddings",
    ("POST", "/v1/responses"): "responses",
    ("GET", "/v1/models"): "models",
}


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    method: str = "POST"


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 500
    body: dict | None = None
    headers: dict[str, str] | None = None
    delay: float = 1.0
    after: int = 2
    size: int = 1536 * 1024


def make_fault(kind: str, options: dict[str, Any]) -> Fault:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(FAULT_KINDS)}")
    return Fault(kind, **{name: value for name, value in options.items() if value is not None})


class FakeProvider(FakeProviderAddress):
    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.disconnect_times: list[float] = []
        self.chunk_delay = 0.0
        self.stream_chunks: int | None = None
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._numbers = count(1)
        self.responses = ResponsesApi()  # the Responses API's stored responses (`store`, `previous_response_id`)
        self._formats = wire_formats(self.responses)
        self._live: set[Exchange] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise IndexError("the fake provider has received no request")
            return self.requests[-1]

    def fail_next(self, kind: str, **options: Any) -> None:
        fault = make_fault(kind, options)
        with self._lock:
            self._faults.append(fault)

    def fail_always(self, kind: str, **options: Any) -> None:
        fault = make_fault(kind, options)
        with self._lock:
            self._always = fault

    def heal(self) -> None:
        with self._lock:
            self._always = None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._always = None
            self.disconnects = 0
            self.disconnect_times.clear()
            self.responses.reset()

    def start(self) -> "FakeProvider":
        if self._thread is not None:
            raise RuntimeError("the fake provider is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self, host=self.host, port=self.port, lifespan="off", log_level="warning", log_config=None,
            access_log=False, proxy_headers=False, timeout_graceful_shutdown=2,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._interrupt_all)
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = self._loop = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _interrupt_all(self) -> None:
        for exchange in self._live:
            exchange.interrupted.set()

    def _count_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
            self.disconnect_times.append(time.monotonic())

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self._loop = asyncio.get_running_loop()
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = None
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            headers[key] = f"{headers[key]}, {value.decode('latin-1')}" if key in headers else value.decode("latin-1")
        if scope["path"].startswith(CONTROL_PREFIX):
            return await answer_control(self, scope["method"], scope["path"], body, send)
        route = ROUTES.get((scope["method"], scope["path"]))
        recorded = RecordedRequest(scope["path"], headers, body if isinstance(body, dict) else {}, scope["method"])
        with self._lock:
            self.requests.append(recorded)
            fault = (self._faults.popleft() if self._faults else self._always) if route else None
        exchange = Exchange(self, receive, send, headers)
        self._live.add(exchange)
        try:
            await self._answer(exchange, route, body, fault)
        except Interrupted:
            if not exchange.gone:
                await exchange.drop_connection()
        finally:
            self._live.discard(exchange)
            exchange.watcher.cancel()

    async def _answer(self, exchange: Exchange, route: str | None, body: Any, fault: Fault | None) -> None:
        if route is None:
            return await exchange.json(404, wire.openai_error(404, "no such route", "not_found_error"))
        form = self._formats[route]
        stream = form.stream is not None and isinstance(body, dict) and body.get("stream") is True
        kind = fault.kind if fault else None
        if fault and kind in ("slow", "hang"):
            await exchange.wait(fault.delay if kind == "slow" else None)
        if fault and kind == "status":
            return await exchange.json(fault.status, fault.body or form.error(fault.status), fault.headers, form.indent)
        if route == "models":
            return await exchange.json(200, wire.MODELS)
        if kind == "cut" and not stream:
            return await exchange.drop_connection()
        if kind == "stream_error" and not stream:
            return await exchange.json(500, form.error(500, wire.STREAM_ERROR_MESSAGE), indent=form.indent)
        if kind == "invalid_json":
            if not stream:
                return await exchange.respond(200, b"{not json", b"application/json")
            return await exchange.stream([form.bad_json_event + b"data: {not json\n\n"])
        refusal = form.header_refusal(exchange.headers)
        if refusal is None and not isinstance(body, dict):
            refusal = 400, form.error(400, "the request body is not valid JSON", "invalid_request_error")
        refusal = refusal or form.refusal(body)
        if refusal is not None:
            return await exchange.json(*refusal, indent=form.indent)
        number = next(self._numbers)
        if not stream:
            return await exchange.json(200, form.json(body, number))
        if kind == "big_line" and form.big_line is not None:
            return await exchange.stream(
                [event.data for event in form.big_line(body, number, fault.size, self.stream_chunks)]
            )
        events = form.stream(body, number, self.stream_chunks)
        head = [event.data for event in events if event.kind == "head"]
        content = [event.data for event in events if event.kind == "content"]
        if fault and kind in ("cut", "stall"):
            return await exchange.stream([*head, *content[: fault.after]], complete=False, stall=kind == "stall")
        if kind == "stream_error" and form.stream_error is not None:
            failure = form.stream_error(body, number, len(head) + 1)
            return await exchange.stream([*head, *content[:1], *[event.data for event in failure]])
        return await exchange.stream([event.data for event in events])


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake OpenAI/Anthropic provider until SIGINT/SIGTERM.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--stream-chunks", type=int, default=None, help="split every streamed reply into N chunks")
    args = parser.parse_args()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    provider = FakeProvider(port=args.port)
    provider.chunk_delay, provider.stream_chunks = args.chunk_delay, args.stream_chunks
    with provider:
        print(f"fake provider listening on {provider.url}", flush=True)
        while not stopping.wait(0.5):
            pass


if __name__ == "__main__":
    main()
