"""GET /metrics as Prometheus scrapes it: a gateway with two workers (prometheus_client's multiprocess mode) serves
known traffic against the fake provider, and every count in the scrape is exact, summed over both workers, and agrees
with the request log; the bearer token; LLMPROXY_METRICS=0; the Grafana dashboard asks only for what is exposed."""

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_ROOT, database_url_for_subprocess
from tests.support.server_process import GatewayProcess

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = REPO_ROOT / "grafana" / "llmproxy-dashboard.json"
HI = [{"role": "user", "content": "hi"}]
Sample = tuple[str, dict[str, str], float]


def scrape(server: GatewayProcess, token: str | None = None) -> list[Sample]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(response.text)
            for s in family.samples]  # fmt: skip


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(value for n, have, value in samples if n == name and labels.items() <= have.items())


def eventually(read: Callable[[], list[Sample]], check: Callable[[list[Sample]], bool], timeout: float = 10) -> list:
    """The first scrape that passes `check` (a stream's count lands just after its last byte; rows are flushed in the
    background), or the last one."""
    deadline = time.monotonic() + timeout
    while not check(samples := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return samples


def requests_per_worker(directory: Path) -> dict[str, float]:
    """llmproxy_requests_total as each worker's own file holds it (what the scrape must sum)."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        counts[path.stem.split("_")[1]] = sum(
            v for key, v, _, _ in values if json.loads(key)[1] == "llmproxy_requests_total"
        )
    return counts


def wait_for_workers(directory: Path, count: int, timeout: float = 60) -> None:
    """Each worker loads the policy at start-up, which writes its policy gauges: `count` files, `count` workers up."""
    deadline = time.monotonic() + timeout
    while len(list(directory.glob("gauge_livemin_*.db"))) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list(directory.glob("gauge_livemin_*.db"))) == count


async def send(server: GatewayProcess, key: str, bodies: list[dict]) -> list[httpx.Response]:
    """Concurrently, each on a connection of its own: the kernel hands the connections to both workers."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        return await asyncio.gather(*(
            http.post(f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
            for body in bodies
        ))  # fmt: skip


def chat(server: GatewayProcess, key: str, model: str) -> httpx.Response:
    [response] = asyncio.run(send(server, key, [{"model": model, "messages": HI}]))
    return response


@pytest.fixture
def world(fake_provider) -> dict:
    """Three models on the fake provider (one of them with two deployments) and a key in a team with a budget."""
    from keys.services import create_api_key
    from routing.models import Deployment
    from routing.services import create_model
    from teams.services import create_team

    base = {"litellm_model": "openai/gpt-4o", "api_base": fake_provider.openai_base}  # priced: spend is real
    create_model("chat-a", **base)
    create_model("pool", deployments=[{**base, "name": "first"}, {**base, "name": "second", "priority": 1}])
    create_model("flaky", **base)
    team = create_team(name="research", max_budget_usd=Decimal("10"))
    labels = {d.model.name: d.label for d in Deployment.objects.select_related("model") if d.model.name != "pool"}
    return {"key": create_api_key(name="metrics-app", team=team).plaintext, "deployment": labels}


def send_known_traffic(server: GatewayProcess, key: str, fake_provider) -> None:
    """15 requests: 7 answered (4 whole, 3 streamed) and 3 unknown models, concurrently; then one by one a wrong key,
    2 provider failures, a failover from the pool's first deployment to its second, a 429 that cools flaky down."""
    ok = [{"model": "chat-a", "messages": HI, "stream": i >= 4} for i in range(7)]
    unknown = [{"model": f"nope-{i}-never-configured", "messages": HI} for i in range(3)]
    assert [r.status_code for r in asyncio.run(send(server, key, ok + unknown))] == [200] * 7 + [400] * 3
    assert chat(server, "llmp_not-a-key", "chat-a").status_code == 401
    fake_provider.fail_next("status", status=500)
    fake_provider.fail_next("status", status=500)
    assert [chat(server, key, "chat-a").status_code for _ in range(2)] == [502, 502]
    fake_provider.fail_next("status", status=503)
    answered = chat(server, key, "pool")
    assert (answered.status_code, answered.headers["x-llmproxy-attempts"]) == (200, "2")
    fake_provider.fail_next("status", status=429, headers={"retry-after": "30"})
    assert chat(server, key, "flaky").status_code == 429


def test_two_workers_count_known_traffic_exactly_and_agree_with_the_request_log(tmp_path, world, fake_provider):
    directory = tmp_path / "metrics"
    directory.mkdir()
    server = GatewayProcess(database_url_for_subprocess(), workers=2, PROMETHEUS_MULTIPROC_DIR=str(directory),
                            LLMPROXY_USAGE_FLUSH_SECONDS="0.1", REDIS_URL="").start()  # fmt: skip
    started = time.time()
    try:
        wait_for_workers(directory, 2)
        send_known_traffic(server, world["key"], fake_provider)
        samples = eventually(lambda: scrape(server), lambda s: total(s, "llmproxy_usage_rows_written_total") == 15)
        per_worker = requests_per_worker(directory)
        assert len([count for count in per_worker.values() if count]) == 2, per_worker  # both workers served
        assert total(samples, "llmproxy_requests_total") == sum(per_worker.values()) == 15
        check_requests(samples, world["deployment"])
        check_deployments(samples, world["deployment"])
        check_usage_agrees_with_the_log(samples)
        samples = check_budget(server)
        assert started - 60 < total(samples, "llmproxy_policy_reload_timestamp_seconds") <= time.time()
        checked = total(samples, "llmproxy_policy_check_timestamp_seconds")
        assert checked >= total(samples, "llmproxy_policy_reload_timestamp_seconds")
        missing = dashboard_metric_names() - {name for name, _, _ in samples}
        assert not missing, f"the dashboard asks for metrics /metrics does not expose: {missing}"

        victim = next(iter(per_worker))
        os.kill(int(victim), signal.SIGKILL)  # a worker killed outright (uvicorn starts another)
        samples = eventually(lambda: scrape(server), lambda _: not list(directory.glob(f"gauge_live*_{victim}.db")))
        assert not list(directory.glob(f"gauge_live*_{victim}.db"))  # the next scrape forgot its gauges
        assert total(samples, "llmproxy_requests_total") == 15  # and kept its counters: totals never go down
        assert total(samples, "llmproxy_usage_buffer_rows") == 0
    finally:
        assert server.stop() == 0


def check_requests(samples: list[Sample], deployments: dict[str, str]) -> None:
    def requests(**labels: str) -> float:
        return total(samples, "llmproxy_requests_total", endpoint="chat", **labels)

    chat_a, flaky = deployments["chat-a"], deployments["flaky"]
    assert requests(model="chat-a", provider="openai", deployment=chat_a, team="research", status="200",
                    end_reason="completed") == 7  # fmt: skip
    assert requests(model="other", deployment="", team="research", status="400", end_reason="rejected") == 3
    assert requests(model="", team="", status="401", end_reason="rejected") == 1
    assert requests(model="chat-a", deployment=chat_a, status="502", end_reason="provider_error") == 2
    assert requests(model="pool", deployment="second", status="200", end_reason="completed") == 1
    assert requests(model="flaky", deployment=flaky, status="429", end_reason="provider_error") == 1
    assert not [labels for _, labels, _ in samples if any("nope-" in value for value in labels.values())]
    assert not [labels for _, labels, _ in samples if "key" in labels]  # only with LLMPROXY_METRICS_PER_KEY=1
    latency, ttft = "llmproxy_request_latency_seconds_count", "llmproxy_time_to_first_token_seconds_count"
    assert [total(samples, latency, model=model) for model in ("chat-a", "pool", "flaky")] == [9, 1, 1]
    assert total(samples, "llmproxy_overhead_seconds_count") == 11  # every request that reached a provider
    assert total(samples, ttft) == total(samples, ttft, model="chat-a") == 3  # the streams
    assert 0 < total(samples, "llmproxy_overhead_seconds_sum") < total(samples, "llmproxy_request_latency_seconds_sum")


def check_deployments(samples: list[Sample], deployments: dict[str, str]) -> None:
    def failures(**labels: str) -> float:
        return total(samples, "llmproxy_provider_failures_total", **labels)

    chat_a, flaky = deployments["chat-a"], deployments["flaky"]
    assert failures() == 4
    assert failures(model="chat-a", deployment=chat_a, provider="openai", status="502", code="provider_error") == 2
    assert failures(model="pool", deployment="first", status="503", code="provider_unavailable") == 1
    assert failures(model="flaky", deployment=flaky, status="429", code="provider_rate_limited") == 1
    failovers = "llmproxy_failovers_total"
    assert total(samples, failovers) == total(samples, failovers, model="pool", deployment="first") == 1
    assert total(samples, "llmproxy_deployment_cooldowns_total") == 1
    cooling = {labels["deployment"]: value for name, labels, value in samples
               if name == "llmproxy_deployment_cooling_down"}  # fmt: skip
    assert cooling == {chat_a: 0, "first": 0, "second": 0, flaky: 1}  # whichever worker answered the scrape


def check_usage_agrees_with_the_log(samples: list[Sample]) -> None:
    from usage.models import RequestLog

    rows = list(RequestLog.objects.all())
    assert len(rows) == 15
    for model in ("chat-a", "pool"):
        mine = [row for row in rows if row.resolved_model == model]
        usage = {"model": model, "team": "research"}
        assert total(samples, "llmproxy_input_tokens_total", **usage) == sum(r.prompt_tokens for r in mine) > 0
        assert total(samples, "llmproxy_output_tokens_total", **usage) == sum(r.completion_tokens for r in mine) > 0
        spend = float(sum(row.cost_usd or Decimal(0) for row in mine))
        assert total(samples, "llmproxy_spend_usd_total", **usage) == pytest.approx(spend) != 0
    assert total(samples, "llmproxy_usage_buffer_rows") == total(samples, "llmproxy_usage_rows_dropped_total") == 0


def check_budget(server: GatewayProcess) -> list[Sample]:
    """The team's budget less what its rows cost (each settled in the background, just after its row was made)."""
    from usage.models import RequestLog

    spent = float(sum(cost or Decimal(0) for cost in RequestLog.objects.values_list("cost_usd", flat=True)))
    left = "llmproxy_team_budget_remaining_usd"
    samples = eventually(lambda: scrape(server), lambda s: abs(total(s, left) - (10 - spent)) < 1e-5)
    assert total(samples, "llmproxy_team_budget_usd", team="research") == 10
    assert total(samples, left, team="research") == pytest.approx(10 - spent, abs=1e-5) != 10
    return samples


def dashboard_metric_names() -> set[str]:
    """Every metric name the dashboard's queries (panels and variables) use."""
    dashboard = json.loads(DASHBOARD.read_text())
    texts = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    texts += [json.dumps(variable.get("query", "")) for variable in dashboard["templating"]["list"]]
    names = {name for text in texts for name in re.findall(r"\bllmproxy_[a-z0-9_]+", text)}
    assert len(names) >= 15  # the dashboard's panels are all there
    return names


def test_the_metrics_token_is_asked_for_when_set(world):
    token = "metrics-secret-0123456789"
    server = GatewayProcess(database_url_for_subprocess(), LLMPROXY_METRICS_TOKEN=token, REDIS_URL="").start()
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            refused = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["error"]["code"] == "invalid_metrics_token"
        assert chat(server, world["key"], "chat-a").status_code == 200
        samples = eventually(lambda: scrape(server, token), lambda s: total(s, "llmproxy_requests_total") == 1)
        assert total(samples, "llmproxy_requests_total", model="chat-a", status="200") == 1
        assert httpx.post(f"{server.url}/metrics", timeout=10).status_code == 405
    finally:
        server.stop()


def test_per_key_labels_and_budgets_only_when_switched_on(world):
    from keys.services import create_api_key

    key = create_api_key(name="capped-app", max_budget_usd=Decimal("2")).plaintext
    server = GatewayProcess(database_url_for_subprocess(), LLMPROXY_METRICS_PER_KEY="1", REDIS_URL="").start()
    try:
        assert chat(server, key, "chat-a").status_code == 200
        samples = eventually(lambda: scrape(server), lambda s: total(s, "llmproxy_key_budget_remaining_usd") < 2)
        assert total(samples, "llmproxy_requests_total", key="capped-app", model="chat-a", team="") == 1
        assert total(samples, "llmproxy_spend_usd_total", key="capped-app") > 0
        assert total(samples, "llmproxy_key_budget_usd", key="capped-app", team="") == 2
        spent = total(samples, "llmproxy_spend_usd_total", key="capped-app")
        assert total(samples, "llmproxy_key_budget_remaining_usd", key="capped-app") == pytest.approx(
            2 - spent, abs=1e-5
        )
        assert total(samples, "llmproxy_key_budget_usd", key="metrics-app") == 0  # a key without a budget: none
    finally:
        server.stop()


def test_metrics_off_records_nothing_per_request(tmp_path, world):
    directory = tmp_path / "metrics"
    directory.mkdir()
    server = GatewayProcess(database_url_for_subprocess(), workers=2, PROMETHEUS_MULTIPROC_DIR=str(directory),
                            LLMPROXY_METRICS="0", REDIS_URL="").start()  # fmt: skip
    try:
        statuses = [r.status_code for r in asyncio.run(send(server, world["key"], [
            {"model": "chat-a", "messages": HI}, {"model": "chat-a", "messages": HI, "stream": True},
            {"model": "nope", "messages": HI},
        ]))]  # fmt: skip
        assert statuses == [200, 200, 400]
        names = {name for name, _, _ in scrape(server)}
        # Only what the answering worker reads at scrape time: deployment health and budgets.
        assert names == {"llmproxy_deployment_cooling_down", "llmproxy_team_budget_usd",
                         "llmproxy_team_budget_remaining_usd"}  # fmt: skip
        assert not list(directory.iterdir())  # no worker wrote a metric
    finally:
        server.stop()
