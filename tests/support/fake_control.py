"""The fake provider's control routes, and FakeProviderProcess: a fake in a process of its own, driven through them.

Several fake providers as separate processes (as the failover tests want: a provider that dies or stalls takes
nothing else with it) still need a test to read what each one received and to tell it how to fail. Every fake answers
these routes under /_fake/, which no provider serves; they are not recorded as requests and never consume a fault:

    GET  /_fake/requests      {"requests": [{path, headers, body, method}, ...], "disconnects": N}
    POST /_fake/fail_next     {"kind": "status", "status": 429, "headers": {"retry-after": "7"}}  (fail_next's options)
    POST /_fake/fail_always   the same, for every request until heal or reset
    POST /_fake/heal          ends fail_always
    POST /_fake/reset         forget requests, faults, stored responses; chunk_delay 0, stream_chunks none
    POST /_fake/settings      {"chunk_delay": 0.1, "stream_chunks": 4} (either)

    with FakeProviderProcess() as provider:    # python -m tests.support.fake_provider --port 0
        provider.fail_always("status", status=503)
        len(provider.requests), provider.last_request.body, provider.heal(), provider.reset()
"""

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from tests.support.fake_exchange import Send

if TYPE_CHECKING:
    from tests.support.fake_provider import FakeProvider, RecordedRequest

CONTROL_PREFIX = "/_fake/"
LISTENING = "fake provider listening on "
REPO_ROOT = Path(__file__).resolve().parents[2]


async def answer_control(provider: "FakeProvider", method: str, path: str, body: Any, send: Send) -> None:
    action = path.removeprefix(CONTROL_PREFIX)
    options = body if isinstance(body, dict) else {}
    status, payload = 200, {"ok": True}
    try:
        if (method, action) == ("GET", "requests"):
            requests = [asdict(request) for request in list(provider.requests)]
            payload = {"requests": requests, "disconnects": provider.disconnects}
        elif (method, action) in (("POST", "fail_next"), ("POST", "fail_always")):
            fail = provider.fail_next if action == "fail_next" else provider.fail_always
            fail(options.pop("kind", None), **options)
        elif (method, action) == ("POST", "heal"):
            provider.heal()
        elif (method, action) == ("POST", "reset"):
            provider.reset()
            provider.chunk_delay, provider.stream_chunks = 0.0, None
        elif (method, action) == ("POST", "settings"):
            if "chunk_delay" in options:
                provider.chunk_delay = float(options["chunk_delay"])
            if "stream_chunks" in options:
                provider.stream_chunks = options["stream_chunks"]
        else:
            status, payload = 404, {"error": f"no control route {method} {path}"}
    except (TypeError, ValueError) as exc:
        status, payload = 400, {"error": str(exc)}
    data = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


class FakeProviderAddress:
    """Where a fake provider, in this process or another, answers once started (port 0 until then)."""

    host: str = "127.0.0.1"
    port: int = 0

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the fake provider has no port until it is started")
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base(self) -> str:
        return self.url


class FakeProviderProcess(FakeProviderAddress):
    """A standalone fake provider (`python -m tests.support.fake_provider --port 0`) with FakeProvider's surface."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._chunk_delay = 0.0
        self._stream_chunks: int | None = None
        self._http: httpx.Client | None = None
        self.log_file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as this object)

    def log(self) -> str:
        self.log_file.seek(0)
        return self.log_file.read()

    def start(self) -> "FakeProviderProcess":
        command = [sys.executable, "-m", "tests.support.fake_provider", "--port", "0"]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=self.log_file, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the process prints it once it listens, or exits (end of file)
        if not line.startswith(LISTENING):
            self.stop()
            raise RuntimeError(f"the fake provider process did not start: {line!r} {self.log()}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        self._http = httpx.Client(base_url=self.url + CONTROL_PREFIX, timeout=10)
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "FakeProviderProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _control(self, method: str, action: str, payload: dict | None = None) -> dict:
        if self._http is None:
            raise RuntimeError("the fake provider process is not started")
        response = self._http.request(method, action, json=payload)
        if response.status_code != 200:
            raise ValueError(response.json().get("error", response.text))
        return response.json()

    def _recorded(self) -> dict:
        return self._control("GET", "requests")

    @property
    def requests(self) -> list["RecordedRequest"]:
        from tests.support.fake_provider import RecordedRequest

        return [RecordedRequest(**request) for request in self._recorded()["requests"]]

    @property
    def last_request(self) -> "RecordedRequest":
        requests = self.requests
        if not requests:
            raise IndexError("the fake provider has received no request")
        return requests[-1]

    @property
    def disconnects(self) -> int:
        return self._recorded()["disconnects"]

    def fail_next(self, kind: str, **options: Any) -> None:
        self._control("POST", "fail_next", {"kind": kind, **options})

    def fail_always(self, kind: str, **options: Any) -> None:
        self._control("POST", "fail_always", {"kind": kind, **options})

    def heal(self) -> None:
        self._control("POST", "heal")

    def reset(self) -> None:
        self._control("POST", "reset")
        self._chunk_delay, self._stream_chunks = 0.0, None

    @property
    def chunk_delay(self) -> float:
        return self._chunk_delay

    @chunk_delay.setter
    def chunk_delay(self, seconds: float) -> None:
        self._control("POST", "settings", {"chunk_delay": seconds})
        self._chunk_delay = seconds

    @property
    def stream_chunks(self) -> int | None:
        return self._stream_chunks

    @stream_chunks.setter
    def stream_chunks(self, count: int | None) -> None:
        self._control("POST", "settings", {"stream_chunks": count})
        self._stream_chunks = count
