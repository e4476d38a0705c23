"""Fuzzing through the live gateway: every response checked, every request counted.

LLMPROXY_FUZZ_EXAMPLES scales the run (hypothesis examples per test, default 1000: about 11 000 requests in all).
"""

import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

EXAMPLES = int(os.environ.get("LLMPROXY_FUZZ_EXAMPLES", "1000"))
DEFAULT_EXAMPLES = EXAMPLES == 1000
MIN_REQUESTS = 10_000  # what a default run of the whole of tests/fuzz must send
PROVIDER_STATUSES = frozenset({502, 503, 504})  # documented: the provider failed, was unreachable or timed out

# Hypothesis also caches data (not examples) in its home directory: keep it out of the repository.
set_hypothesis_home_dir(
    os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or Path(tempfile.gettempdir()) / "llmproxy-hypothesis"
)
settings.register_profile(
    "fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis directory
    derandomize=True,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("fuzz")


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.seconds = 0.0
        self.tests: set[str] = set()


TALLY = Tally()


def check_response(response: httpx.Response) -> None:
    """No 500, no other 5xx but the documented provider ones, and every error OpenAI-shaped."""
    status = response.status_code
    assert status != 500, f"500 for this request: {response.request.content[:500]!r}: {response.text[:500]}"
    assert status < 500 or status in PROVIDER_STATUSES, f"unexpected {status}: {response.text[:500]}"
    if response.is_success:
        return
    assert response.headers.get("content-type") == "application/json", (status, response.headers, response.text[:300])
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str), error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error


class FuzzClient:
    """An httpx client that checks and counts every answer."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.url = base_url
        self.api_key = api_key
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.sent = 0

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        self.sent += 1
        TALLY.requests += 1
        TALLY.statuses[response.status_code] += 1
        check_response(response)
        return response

    def chat(self, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("POST", "/v1/chat/completions", content=content, headers={**self.auth, **(headers or {})})


@pytest.fixture
def fuzz(request, gateway_url: str, api_key: str, policy: dict, monkeypatch) -> Iterator[FuzzClient]:
    from api.gateway import gateway

    # The policy does not change while fuzzing: check its version as production does (every 0.25 s by default),
    # not on every request as the test settings ask, which would double the cost of each request.
    monkeypatch.setattr(gateway.policy, "_refresh_seconds", 0.25)
    client = FuzzClient(gateway_url, api_key)
    started = time.perf_counter()
    yield client
    TALLY.seconds += time.perf_counter() - started
    TALLY.tests.add(request.node.nodeid)
    client.http.close()


def pytest_terminal_summary(terminalreporter) -> None:
    if TALLY.requests:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(TALLY.statuses.items()))
        terminalreporter.write_line(
            f"fuzz: {TALLY.requests} requests in {TALLY.seconds:.1f} s through the live gateway, "
            f"{TALLY.statuses[500]} with status 500 ({statuses})"
        )


def pytest_sessionfinish(session) -> None:
    """A run of the whole directory at the default scale must have sent MIN_REQUESTS requests."""
    fuzz_items = [item for item in session.items if "tests/fuzz/" in item.nodeid]
    files = {item.nodeid.split("::")[0].rsplit("/", 1)[-1] for item in fuzz_items}
    whole_directory = files == {path.name for path in Path(__file__).parent.glob("test_*.py")}
    filtered = session.config.option.keyword or session.config.option.markexpr
    ran_them_all = {item.nodeid for item in fuzz_items} <= TALLY.tests
    if DEFAULT_EXAMPLES and whole_directory and not filtered and ran_them_all and TALLY.requests < MIN_REQUESTS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nfuzz: only {TALLY.requests} requests were sent; a default run must send at least {MIN_REQUESTS}")
