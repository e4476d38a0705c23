"""Prometheus metrics, served at GET /metrics (telemetry/views.py): what every request did, and the state an operator
watches (deployment health, remaining budgets, the usage buffer, the policy cache).

Several workers: with PROMETHEUS_MULTIPROC_DIR set (`make serve` sets it, to a directory emptied before the workers
start), prometheus_client keeps each worker's values in memory-mapped files there, and a scrape, whichever worker
answers it, sums the files of every worker (MultiProcessCollector): a counter is the total of the host. Gauges say how
their workers' values combine: the usage buffer sums the live workers, the policy's reload time is the stalest live
worker's and its last check the freshest one's, a cooldown's end the latest. The live gauges of a worker that is gone
are removed at the next scrape (`mark_process_dead`: uvicorn ends a worker by re-raising SIGTERM, so no exit hook of
the worker would run); its counters stay, so a host's totals never go down. Without the variable, one plain registry
per process (right for one worker only: each worker would answer with its own numbers).

Deployment health and remaining budgets are read at scrape time, by the worker answering, from what every worker
shares (Redis or the database): the caller hands them in as plain values (`ScrapeState`, api/metrics_state.py).

The hot path: one call per request (`request_finished`, from api.accounting's finish()) on cached label children.
LLMPROXY_METRICS=0 makes every recording function return at once; no metric is even created, so no file is written.

Labels are bounded: `model` is a name the policy configures (a model or an alias; any other requested name is
"other", none is ""), `provider` and `deployment` come from the policy, `team` is the team's name ("" without one),
`endpoint` one of four, `status` the HTTP status answered, `end_reason` one of five, `code` one of the gateway's own
error codes. A key's name is a label only with LLMPROXY_METRICS_PER_KEY=1 (keys are many and short-lived).

This module imports none of the gateway's apps: callers hand it plain values.
"""

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

ENABLED: bool = settings.LLMPROXY_METRICS
PER_KEY: bool = settings.LLMPROXY_METRICS_PER_KEY
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

OTHER = "other"  # the model label of a requested name the policy does not configure
REQUEST_LABELS = ("model", "provider", "deployment", "team", "endpoint", "status", "end_reason")
DEPLOYMENT_LABELS = ("model", "deployment", "provider")
# Seconds. A whole answer takes from milliseconds (a refusal, a cached reply) to the 600 s default timeout.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# The gateway's own share: about 1-3 ms per request on the direct relay, 15-30 ms through LiteLLM.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
COOLDOWN_END = "llmproxy_deployment_cooldown_end_timestamp_seconds"


class _Recorded:
    """Every metric a worker records, and the label children already made (a dict lookup per request)."""

    def __init__(self, *, per_key: bool) -> None:
        key = ("key",) if per_key else ()
        usage, timing = ("model", "team", *key), ("model", "endpoint")
        self.per_key = per_key
        self.requests = Counter(
            "llmproxy_requests", "Requests answered (one per request-log row)", (*REQUEST_LABELS, *key)
        )
        self.input_tokens = Counter("llmproxy_input_tokens", "Prompt (input) tokens", usage)
        self.output_tokens = Counter("llmproxy_output_tokens", "Completion (output) tokens", usage)
        self.spend = Counter("llmproxy_spend_usd", "Spend in US dollars, as the request log prices it", usage)
        self.latency = Histogram(
            "llmproxy_request_latency_seconds",
            "Whole requests that reached a provider",
            timing,
            buckets=LATENCY_BUCKETS,
        )
        self.ttft = Histogram(
            "llmproxy_time_to_first_token_seconds", "Until a stream's first byte", timing, buckets=LATENCY_BUCKETS
        )
        self.overhead = Histogram(
            "llmproxy_overhead_seconds",
            "The gateway's own time until the answer (or a stream's first byte)",
            timing,
            buckets=OVERHEAD_BUCKETS,
        )
        self.provider_failures = Counter(
            "llmproxy_provider_failures", "Provider attempts that failed", (*DEPLOYMENT_LABELS, "status", "code")
        )
        self.failovers = Counter(
            "llmproxy_failovers", "Failed attempts followed by another (deployment or fallback)", DEPLOYMENT_LABELS
        )
        self.cooldowns = Counter("llmproxy_deployment_cooldowns", "Cooldowns started", DEPLOYMENT_LABELS)
        self.cooldown_end = Gauge(
            COOLDOWN_END, "When the latest cooldown started ends", DEPLOYMENT_LABELS, multiprocess_mode="livemax"
        )
        self.usage_buffer = Gauge(
            "llmproxy_usage_buffer_rows", "Request-log rows waiting to be written", multiprocess_mode="livesum"
        )
        self.rows_written = Counter("llmproxy_usage_rows_written", "Request-log rows written")
        self.rows_dropped = Counter("llmproxy_usage_rows_dropped", "Request-log rows dropped (buffer full, refused)")
        self.policy_reloaded = Gauge(
            "llmproxy_policy_reload_timestamp_seconds", "When the policy in use was built", multiprocess_mode="livemin"
        )
        self.policy_checked = Gauge(
            "llmproxy_policy_check_timestamp_seconds",
            "When the policy was last confirmed current",
            multiprocess_mode="livemax",
        )
        self.request_children: dict[tuple[str, ...], Any] = {}
        self.usage_children: dict[tuple[str, ...], tuple[Any, Any, Any]] = {}
        self.timing_children: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self.known_models: frozenset[str] = frozenset()


def _start() -> _Recorded | None:
    if not ENABLED:
        return None
    disable_created_metrics()  # no *_created series: a scrape looks the same with one worker or several
    if MULTIPROC_DIR:
        os.makedirs(MULTIPROC_DIR, exist_ok=True)
    return _Recorded(per_key=PER_KEY)


_recorded = _start()


def model_label(name: str) -> str:
    """A requested model name as a label: configured names only."""
    if _recorded is None or not name or name in _recorded.known_models:
        return name
    return OTHER


def request_finished(row: Mapping[str, Any], *, provider: str, overhead_ms: float) -> None:
    """One finished request: its request-log row (a dict, as api.accounting builds it), its provider and overhead."""
    m = _recorded
    if m is None:
        return
    model = row["resolved_model"] or model_label(row["requested_model"])
    team, endpoint = row["team_name"], row["endpoint"]
    key = (row["key_name"],) if m.per_key else ()
    labels = (model, provider, row["deployment"], team, endpoint, str(row["status"]), row["end_reason"], *key)
    counter = m.request_children.get(labels)
    if counter is None:
        counter = m.request_children[labels] = m.requests.labels(*labels)
    counter.inc()
    prompt, completion, cost = row["prompt_tokens"], row["completion_tokens"], row["cost_usd"]
    if prompt or completion or cost:
        usage = (model, team, *key)
        children = m.usage_children.get(usage)
        if children is None:
            children = m.usage_children[usage] = (m.input_tokens.labels(*usage), m.output_tokens.labels(*usage),
                                                  m.spend.labels(*usage))  # fmt: skip
        if prompt:
            children[0].inc(prompt)
        if completion:
            children[1].inc(completion)
        if cost:
            children[2].inc(float(cost))
    if row["attempts"]:
        timing = (model, endpoint)
        histograms = m.timing_children.get(timing)
        if histograms is None:
            histograms = m.timing_children[timing] = (m.latency.labels(*timing), m.ttft.labels(*timing),
                                                      m.overhead.labels(*timing))  # fmt: skip
        histograms[0].observe(row["latency_ms"] / 1000)
        if row["ttft_ms"] is not None:
            histograms[1].observe(row["ttft_ms"] / 1000)
        histograms[2].observe(overhead_ms / 1000)


def provider_failed(*, model: str, deployment: str, provider: str, status: int, code: str) -> None:
    if _recorded is not None:
        _recorded.provider_failures.labels(model, deployment, provider, str(status), code[:64]).inc()


def failed_over(*, model: str, deployment: str, provider: str) -> None:
    if _recorded is not None:
        _recorded.failovers.labels(model, deployment, provider).inc()


def cooldown_started(*, model: str, deployment: str, provider: str, ends: float) -> None:
    if _recorded is not None:
        _recorded.cooldowns.labels(model, deployment, provider).inc()
        _recorded.cooldown_end.labels(model, deployment, provider).set(ends)


def usage_buffered(rows: int) -> None:
    if _recorded is not None:
        _recorded.usage_buffer.set(rows)


def usage_rows_written(rows: int) -> None:
    if _recorded is not None:
        _recorded.rows_written.inc(rows)


def usage_rows_dropped(rows: int) -> None:
    if _recorded is not None:
        _recorded.rows_dropped.inc(rows)


def policy_loaded(names: Iterable[str]) -> None:
    """A new policy snapshot is in use; `names`: every model and alias it configures (the model label's values)."""
    if _recorded is not None:
        _recorded.known_models = frozenset(names)
        _recorded.policy_reloaded.set(time.time())


def policy_checked() -> None:
    """The policy in use was confirmed current (its version read)."""
    if _recorded is not None:
        _recorded.policy_checked.set(time.time())


@dataclass(frozen=True)
class DeploymentHealthValue:
    model: str
    deployment: str
    provider: str
    cooling_until: float | None  # Unix time, from the answering worker's view (shared through Redis when configured)


@dataclass(frozen=True)
class BudgetValue:
    team: str
    key: str  # "" for a team's own budget
    budget_usd: float
    remaining_usd: float  # negative when requests admitted before the budget ran out cost more than was left


@dataclass(frozen=True)
class ScrapeState:
    """What the answering worker read at scrape time, as plain values."""

    deployments: tuple[DeploymentHealthValue, ...] = ()
    budgets: tuple[BudgetValue, ...] = ()


def exposition(state: ScrapeState) -> bytes:
    """The text a scrape answers: every worker's recorded metrics, then the scrape-time state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(state))
    return generate_latest(registry)


class _Scrape:
    def __init__(self, state: ScrapeState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        if MULTIPROC_DIR:
            forget_dead_workers(MULTIPROC_DIR)
        source = MultiProcessCollector(None, path=MULTIPROC_DIR) if MULTIPROC_DIR else REGISTRY
        recorded = list(source.collect())
        yield from recorded
        yield self._health(recorded)
        yield from self._budgets()

    def _health(self, recorded: list[Metric]) -> Metric:
        """1 while a deployment cools down in the answering worker's view (shared through Redis when configured), or
        in any live worker's of this host (without Redis each worker keeps its own), else 0."""
        ends = {
            (sample.labels["model"], sample.labels["deployment"], sample.labels["provider"]): sample.value
            for family in recorded
            if family.name == COOLDOWN_END
            for sample in family.samples
        }
        health = GaugeMetricFamily(
            "llmproxy_deployment_cooling_down", "1: cooling down after failures, 0: healthy", labels=DEPLOYMENT_LABELS
        )
        now = time.time()
        for item in self.state.deployments:
            labels = (item.model, item.deployment, item.provider)
            cooling = max(item.cooling_until or 0.0, ends.get(labels, 0.0)) > now
            health.add_metric(labels, 1.0 if cooling else 0.0)
        return health

    def _budgets(self) -> Iterator[Metric]:
        team_budget = GaugeMetricFamily("llmproxy_team_budget_usd", "A team's budget per period", labels=["team"])
        team_left = GaugeMetricFamily(
            "llmproxy_team_budget_remaining_usd", "What a team has left this period, as enforced", labels=["team"]
        )
        key_budget = GaugeMetricFamily("llmproxy_key_budget_usd", "A key's budget per period", labels=["key", "team"])
        key_left = GaugeMetricFamily(
            "llmproxy_key_budget_remaining_usd", "What a key has left this period, as enforced", labels=["key", "team"]
        )
        for item in self.state.budgets:
            if item.key:
                key_budget.add_metric([item.key, item.team], item.budget_usd)
                key_left.add_metric([item.key, item.team], item.remaining_usd)
            else:
                team_budget.add_metric([item.team], item.budget_usd)
                team_left.add_metric([item.team], item.remaining_usd)
        yield from (team_budget, team_left)
        if PER_KEY:
            yield from (key_budget, key_left)


def forget_dead_workers(directory: str) -> None:
    """The live gauges of workers that are gone (stopped, killed, restarted by uvicorn) stop counting: a usage buffer
    they will never write, a policy they no longer serve. Their counters stay: they are part of the host's totals."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)
        except PermissionError:  # alive, another user's
            pass
