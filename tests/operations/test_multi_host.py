"""Three gateway hosts (two workers each, each on its own address: tests/operations/hosts.py) behind haproxy,
sharing one PostgreSQL, one Redis and one fake provider, as the README's team deployment runs them.

Under a bounded load through the balancer: a key's and a team's rpm limits hold exactly across hosts, a revocation
stops the key on every host within a second, every request is in the request log exactly once, and each host's
/metrics agrees with what it answered. A host killed with SIGKILL mid-load fails only the requests it held; the
balancer moves on; the rows it loses are at most those of its last flush interval (README: What a crashed host
loses)."""

import asyncio
import time
from collections import Counter

import httpx
import pytest
from django.db import connection

from tests.operations.cluster import Cluster
from tests.operations.load import Load, Outcome, scrape_requests_by_status, send
from tests.usage.conftest import wait_for_minute_window

pytestmark = pytest.mark.django_db(transaction=True)

CONCURRENCY = 16
KEY_RPM, TEAM_RPM = 50, 40
POOL_SIZE = 4  # LLMPROXY_DB_POOL_SIZE on each worker (tests/operations/cluster.py)
FLUSH_SECONDS = 1.0  # LLMPROXY_USAGE_FLUSH_SECONDS, the default
WRITE_SLACK = 0.25  # a batch write in progress when the host dies (milliseconds here; generous)


def kill(gateway) -> tuple[float, float]:
    """SIGKILL a host's gateway: when the signal went, and when no process of it was left."""
    killed_at = time.monotonic()
    gateway.kill()
    return killed_at, time.monotonic()


def other_connections() -> int:
    """Connections to the test database other than this one (the hosts' pools keep what they opened)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")  # fmt: skip
        return cursor.fetchone()[0]


def recorder_lines(cluster: Cluster) -> list[str]:
    """What the hosts' request-log writers said (why a row is missing, if one is)."""
    return [f"{name}: {line}" for name, gateway in cluster.gateways.items()
            for line in gateway.log().splitlines() if "usage.recorder" in line]  # fmt: skip


def create_policy(cluster: Cluster) -> None:
    from routing.services import create_model

    create_model("gpt-4o-mini", litellm_model="openai/fake-model", api_base=cluster.provider_base)


def logs_request_ids() -> bool:
    from usage.models import RequestLog

    return any(field.name == "request_id" for field in RequestLog._meta.get_fields())


def metrics_when_settled(url: str, expected: Counter, timeout: float = 5.0) -> Counter | None:
    """A host's requests by status from /metrics, read again until it matches `expected` or `timeout` passes (a
    request is counted as it finishes, which can be just after its client has the answer)."""
    deadline = time.monotonic() + timeout
    while (by_status := scrape_requests_by_status(url)) is not None and by_status != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return by_status


async def poll_until(hosts: dict[str, str], key: str, until: float, tag: str) -> list[Outcome]:
    """Each host directly, a new connection per request (so both workers are asked), until `until`."""
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as http:

        async def poll(name: str, url: str) -> list[Outcome]:
            outcomes = []
            while time.monotonic() < until:
                outcomes.append(await send(http, url, key, f"{tag}-{name}-{len(outcomes)}", host=name))
                await asyncio.sleep(0.02)
            return outcomes

        per_host = await asyncio.gather(*(poll(name, url) for name, url in hosts.items()))
    return [outcome for outcomes in per_host for outcome in outcomes]


def test_limits_revocation_request_log_and_metrics_hold_across_three_hosts(cluster: Cluster):
    from keys.services import create_api_key, revoke_api_key
    from teams.services import create_team
    from usage.models import RequestLog

    create_policy(cluster)
    limited = create_api_key(name="limited", rpm_limit=KEY_RPM).plaintext
    research = create_team(name="research", rpm_limit=TEAM_RPM)
    first, second = (create_api_key(name=name, team=research).plaintext for name in ("first", "second"))
    doomed = create_api_key(name="doomed").plaintext
    cluster.start_gateways()
    hosts = {name: gateway.url for name, gateway in cluster.gateways.items()}

    wait_for_minute_window(margin=25)
    jobs = [(key, f"load-{i}") for i, key in enumerate([limited, first, limited, second] * 50)]
    outcomes = asyncio.run(Load(cluster.balancer.url, jobs, concurrency=CONCURRENCY).run())
    by_key = {key: Counter(o.status for o in outcomes if o.key == key) for key in (limited, first, second)}
    assert by_key[limited] == {200: KEY_RPM, 429: 100 - KEY_RPM}
    team_statuses = by_key[first] + by_key[second]
    assert team_statuses == {200: TEAM_RPM, 429: 100 - TEAM_RPM}
    assert {o.host for o in outcomes} == set(hosts)  # every host took its share of both limits
    opened = other_connections()
    print(f"\nPostgreSQL connections open after the load: {opened} (budget: 3 hosts x 2 workers x pool 4 = 24)")
    assert opened <= 3 * 2 * POOL_SIZE + 2  # (+2: the test process's own pool)

    # Revocation: every worker of every host knows the key (warm caches), then it is revoked in the database.
    warm = asyncio.run(poll_until(hosts, doomed, time.monotonic() + 0.5, "warm"))
    assert {o.status for o in warm} == {200}
    revoked_at = time.monotonic()
    revoke_api_key(name="doomed")
    polls = asyncio.run(poll_until(hosts, doomed, revoked_at + 1.5, "revoked"))
    accepted_after = {name: max((o.started - revoked_at for o in polls if o.host == name and o.status != 401),
                                default=0.0) for name in hosts}  # fmt: skip
    print(f"\nrevocation: last request accepted after it, per host (s): {accepted_after}")
    assert all(seconds < 1.0 for seconds in accepted_after.values())

    # Each host's /metrics says what it answered; after a graceful stop (every buffer flushed), every request is in
    # the request log exactly once.
    sent = outcomes + warm + polls
    metrics = {name: metrics_when_settled(url, Counter(o.status for o in sent if o.host == name))
               for name, url in hosts.items()}  # fmt: skip
    for gateway in cluster.gateways.values():
        gateway.stop()
    rows = list(RequestLog.objects.all())
    if logs_request_ids():
        logged = Counter(row.request_id for row in rows)
        assert logged == Counter(o.request_id for o in sent), recorder_lines(cluster)
    assert len(rows) == len(sent), recorder_lines(cluster)
    assert Counter(row.status for row in rows) == Counter(o.status for o in sent)
    if None in metrics.values():
        pytest.skip("no /metrics on this gateway: the per-host metrics check did not run")
    for name in hosts:
        assert metrics[name] == Counter(o.status for o in sent if o.host == name), name


def test_a_host_killed_mid_load_fails_only_its_in_flight_requests_and_loses_at_most_one_flush(cluster: Cluster):
    from keys.services import create_api_key
    from usage.models import RequestLog

    create_policy(cluster)
    key = create_api_key(name="steady").plaintext
    cluster.provider.chunk_delay, cluster.provider.stream_chunks = 0.05, 6  # each stream is open ~0.3 s
    cluster.start_gateways(LLMPROXY_USAGE_FLUSH_SECONDS=str(FLUSH_SECONDS))
    victim = cluster.gateways["host2"]
    jobs = [(key, f"stream-{i}") for i in range(300)]

    async def load_then_kill() -> tuple[list[Outcome], float, float, float]:
        load = Load(cluster.balancer.url, jobs, concurrency=CONCURRENCY, stream=True)
        running = asyncio.create_task(load.run())
        await load.wait_done(100)
        killed_at, dead_at = await asyncio.to_thread(kill, victim)
        await asyncio.to_thread(cluster.balancer.wait_for, "host2", "DOWN")
        down_at = time.monotonic()
        return await running, killed_at, dead_at, down_at

    outcomes, killed_at, dead_at, down_at = asyncio.run(load_then_kill())
    failures = [o for o in outcomes if o.failed]
    casualties = [o for o in outcomes if o.under_way(killed_at, dead_at)]
    errors = {name: {field: int(row[field] or 0) for field in ("econ", "eresp", "srv_abrt", "wredis")}
              for name, row in cluster.balancer.stats().items()}  # fmt: skip
    print(f"\nSIGKILL of host2 (gone {dead_at - killed_at:.3f} s later, marked down by haproxy after "
          f"{down_at - killed_at:.2f} s) with {len(casualties)} requests under way on all hosts: {len(failures)} "
          f"failed {dict(Counter((o.status, o.error) for o in failures))}, {len(outcomes) - len(failures)} of "
          f"{len(outcomes)} answered whole; haproxy's counts per host: {errors}")  # fmt: skip
    assert failures  # the kill hit requests under way
    assert all(o.under_way(killed_at, dead_at) for o in failures)  # only those: nothing later failed
    # Which host a failure was on: the answer names it (x-llmproxy-host) when there was one (a 502, or a stream cut
    # short); haproxy closes the client's connection without an answer when a host dies before its response
    # headers. haproxy's own counts show no error on the survivors, and nothing went to host2 once it was down.
    assert all(o.host == "host2" for o in failures if o.status is not None)
    assert all(not any(errors[name].values()) for name in ("host1", "host3")), errors
    assert not [o for o in outcomes if o.host == "host2" and o.started > down_at]
    assert down_at - killed_at < 2.0

    # Rows: the survivors stop gracefully (every row flushed); the victim's rows are there except, at most, those
    # of requests it answered in its last flush interval (and none for the requests it held when it died).
    for name in ("host1", "host3"):
        cluster.gateways[name].stop()
    answered = [o for o in outcomes if not o.failed]
    losable = {
        o.request_id for o in answered if o.host == "host2" and o.ended > killed_at - FLUSH_SECONDS - WRITE_SLACK
    }
    rows = list(RequestLog.objects.all())
    lost = len(answered) - len(rows)
    print(f"rows: {len(rows)} written for {len(answered)} answered requests; {lost} lost "
          f"(at most {len(losable)}: answered by host2 in its last {FLUSH_SECONDS:g} s)")  # fmt: skip
    assert lost <= len(losable), recorder_lines(cluster)
    assert len(rows) <= len(answered) + len(failures)
    if logs_request_ids():
        logged = Counter(row.request_id for row in rows)
        assert max(logged.values()) == 1
        assert set(logged) <= {o.request_id for o in outcomes}
        assert {o.request_id for o in answered} - set(logged) <= losable, recorder_lines(cluster)
