"""A bounded load of chat requests and what each client saw: when it started and ended, the status, which host
answered (haproxy's `x-llmproxy-host`), whether the whole answer arrived; and /metrics read back per host."""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import orjson

CHAT = "/v1/chat/completions"


@dataclass
class Outcome:
    request_id: str
    key: str
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer at all
    host: str  # the host that answered (or that haproxy tried), "" if unknown
    complete: bool  # a 2xx with the whole answer ([DONE] for a stream)
    error: str = ""

    def under_way(self, start: float, end: float) -> bool:
        """Whether the request was under way at some moment from `start` to `end`."""
        return self.started < end and self.ended > start

    @property
    def failed(self) -> bool:
        """What a client counts as a failure of the service: no answer, a 5xx, or a 2xx cut short."""
        return self.status is None or self.status >= 500 or (200 <= self.status < 300 and not self.complete)


def chat_body(request_id: str, *, stream: bool, model: str = "gpt-4o-mini") -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"hi from {request_id}"}],
        "stream": stream,
    }


async def send(http: httpx.AsyncClient, base_url: str, key: str, request_id: str, *, stream: bool = False,
               host: str = "", model: str = "gpt-4o-mini") -> Outcome:  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", "x-request-id": request_id}
    outcome = Outcome(request_id, key, time.monotonic(), 0.0, None, host, False)
    try:
        async with http.stream("POST", base_url + CHAT, json=chat_body(request_id, stream=stream, model=model),
                               headers=headers) as response:  # fmt: skip
            outcome.status = response.status_code
            outcome.host = response.headers.get("x-llmproxy-host", host)
            if stream and response.status_code == 200:
                events = [line async for line in response.aiter_lines() if line.startswith("data: ")]
                outcome.complete = events[-1:] == ["data: [DONE]"] and not any('"error"' in e for e in events)
            else:
                body = await response.aread()
                outcome.complete = response.status_code == 200 and bool(orjson.loads(body).get("choices"))
    except httpx.HTTPError as exc:
        outcome.error = type(exc).__name__
    outcome.ended = time.monotonic()
    return outcome


class Load:
    """`jobs` ((key, request id) pairs) sent through `base_url` by `concurrency` clients; `done` counts answers."""

    def __init__(self, base_url: str, jobs: list[tuple[str, str]], *, concurrency: int, stream: bool = False) -> None:
        self.base_url, self.jobs, self.concurrency, self.stream = base_url, jobs, concurrency, stream
        self.outcomes: list[Outcome] = []

    @property
    def done(self) -> int:
        return len(self.outcomes)

    async def run(self) -> list[Outcome]:
        queue = list(reversed(self.jobs))
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:

            async def client() -> None:
                while queue:
                    key, request_id = queue.pop()
                    self.outcomes.append(await send(http, self.base_url, key, request_id, stream=self.stream))

            await asyncio.gather(*(client() for _ in range(self.concurrency)))
        return self.outcomes

    async def wait_done(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.done < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.done} of {count} requests answered")
            await asyncio.sleep(0.005)


def scrape_requests_by_status(url: str) -> Counter | None:
    """`llmproxy_requests_total` of one host (all its workers) summed by status; None if it serves no /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{url}/metrics", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    totals: Counter = Counter()
    for family in text_string_to_metric_families(response.text):
        if family.name == "llmproxy_requests":
            for sample in family.samples:
                if sample.name == "llmproxy_requests_total":
                    totals[int(sample.labels["status"])] += int(sample.value)
    return totals
