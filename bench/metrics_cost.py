"""make bench, last table: what the Prometheus metrics cost per request, with tracing off (its default).

Two gateway workers run side by side on the same core, one with metrics on (in prometheus_client's multiprocess
mode, as `make serve` and the container run them: every update writes to a memory-mapped file) and one with
`LLMPROXY_METRICS=0`; neither has OTEL_EXPORTER_OTLP_ENDPOINT, so tracing is off in both. They are measured in
alternating rounds (on, off, on, off, …) so that drift of the machine falls on both alike; the table gives the median
CPU ms per request of each and the difference (target ≤ 0.2).
"""

import shutil
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path

PORTS = {"metrics on": 8312, "metrics off": 8313}
ROUNDS = 3
TARGET_MS = 0.2


def environments(env: dict[str, str], work: Path) -> dict[str, dict[str, str]]:
    metrics_dir = work / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    base = {name: value for name, value in env.items() if not name.startswith("OTEL_")}
    return {
        "metrics on": {**base, "LLMPROXY_METRICS": "1", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        "metrics off": {**base, "LLMPROXY_METRICS": "0"},
    }


async def telemetry_table(pids: dict[str, int], key: str, scale: float,
                          measure: Callable[..., Awaitable[dict]]) -> list[str]:  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    plan = [("json", False, max(200, int(1500 * scale))), ("stream", True, max(100, int(600 * scale)))]
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for kind, stream, total in plan:
            for name, port in PORTS.items():
                result = await measure(name, f"http://127.0.0.1:{port}/v1/chat/completions", headers, pids[name],
                                       concurrency=16, total=total, stream=stream)  # fmt: skip
                if result["failures"]:
                    raise SystemExit(f"{name}: {result['failures']} requests failed: fix the bench")
                cpu.setdefault((name, kind), []).append(result["cpu_ms"])
    lines = ["| kind | c | metrics on CPU ms/req | metrics off CPU ms/req | metrics cost | target |",
             "|" + " --- |" * 6]  # fmt: skip
    for kind, _, _ in plan:
        on, off = (statistics.median(cpu[(name, kind)]) for name in PORTS)
        verdict = "ok" if on - off <= TARGET_MS else "OVER"
        lines.append(f"| {kind} | 16 | {on:.2f} | {off:.2f} | {on - off:+.2f} | ≤ {TARGET_MS} {verdict} |")
    return lines
