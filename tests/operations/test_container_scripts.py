"""What the container image runs, run directly (no container engine runs on this machine, README: Container image):
the entrypoint's `serve` and `migrate`, the health check against a live, a failing and a dead port, and the
Dockerfile, .dockerignore, compose.yaml and haproxy.cfg as written."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import database_url_for_subprocess
from tests.operations.cluster import require_binary
from tests.support.live_server import free_port
from tests.support.server_process import REPO_ROOT

ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = REPO_ROOT / "docker" / "healthcheck.py"


def entrypoint_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "DATABASE_URL": database_url, "HOST": "127.0.0.1",
            "PORT": str(port), "DJANGO_SETTINGS_MODULE": "tests.settings", **extra}  # fmt: skip


def healthcheck(port: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env={**os.environ, "PORT": str(port)},
                          capture_output=True, text=True, timeout=10)  # fmt: skip


def wait_until_live(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the entrypoint exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the entrypoint's server never answered /healthz/live")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


@pytest.mark.django_db(transaction=True)
def test_serve_starts_two_workers_on_the_test_database_with_fresh_metrics(tmp_path):
    port, metrics = free_port(), tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1234.db").write_bytes(b"a previous run's counts")
    env = entrypoint_env(database_url_for_subprocess(), port, WEB_CONCURRENCY="2",
                         PROMETHEUS_MULTIPROC_DIR=str(metrics))  # fmt: skip
    process = subprocess.Popen([str(ENTRYPOINT), "serve"], env=env, start_new_session=True,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until_live(f"http://127.0.0.1:{port}", process)
        ready = httpx.get(f"http://127.0.0.1:{port}/healthz/ready", timeout=10)
        assert ready.status_code in (200, 404), ready.text  # 404: before /healthz/ready existed
        assert healthcheck(port).returncode == 0
        assert not (metrics / "counter_1234.db").exists()  # started fresh
        # exec'd: the process the container engine signals is uvicorn itself, with its two workers under it
        assert "uvicorn" in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert "--workers\x002" in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
    finally:
        code = stop(process)
    assert code in (0, -signal.SIGTERM)
    assert healthcheck(port).returncode == 1  # nothing listens any more


def test_serve_never_migrates_and_migrate_does(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    url, port = f"sqlite:///{database}", free_port()
    process = subprocess.Popen([str(ENTRYPOINT)], env=entrypoint_env(url, port, WEB_CONCURRENCY="1"),
                               start_new_session=True, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until_live(f"http://127.0.0.1:{port}", process)  # `serve` is the default
        ready = httpx.get(f"http://127.0.0.1:{port}/healthz/ready", timeout=10)
        assert ready.status_code in (503, 404), ready.text  # not ready before the migration (404: no such check)
    finally:
        stop(process)
    assert tables(database) == set()  # the server started on an empty database and created nothing

    migrated = subprocess.run([str(ENTRYPOINT), "migrate"], env=entrypoint_env(url, port), capture_output=True,
                              text=True, timeout=120)  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    assert {"django_migrations", "keys_apikey", "usage_requestlog"} <= tables(database)
    listed = subprocess.run([str(ENTRYPOINT), "manage", "showmigrations", "usage"], env=entrypoint_env(url, port),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert listed.returncode == 0 and "[ ]" not in listed.stdout


def tables(database: Path) -> set[str]:
    if not database.exists():
        return set()
    with sqlite3.connect(database) as connection:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_health_check_fails_on_an_error_status_and_a_dead_port():
    from tests.support.fake_provider import FakeProvider

    with FakeProvider() as provider:  # an HTTP server that answers /healthz/live with 404
        answered = healthcheck(provider.port)
    assert answered.returncode == 1 and "404" in answered.stderr
    started = time.monotonic()
    dead = healthcheck(free_port())
    assert dead.returncode == 1 and "refused" in dead.stderr.lower()
    assert time.monotonic() - started < 5


def test_the_dockerfile_builds_in_two_stages_with_hashes_as_a_user_with_a_health_check():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.MULTILINE)
    assert stages == ["builder", "runtime"]
    assert "pip install --require-hashes -r /tmp/requirements.txt" in dockerfile
    assert "COPY --from=builder /opt/venv /opt/venv" in dockerfile
    assert re.search(r"^RUN .*manage\.py collectstatic --noinput", dockerfile, re.MULTILINE)
    runtime = dockerfile.split(" AS runtime", 1)[1]
    user = re.findall(r"^USER (\S+)$", runtime, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert runtime.index("USER ") < runtime.index("ENTRYPOINT")
    assert 'HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["python", ' \
           '"/app/docker/healthcheck.py"]' in runtime  # fmt: skip
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in runtime and 'CMD ["serve"]' in runtime
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "*.sqlite3", "tests", "staticfiles"} <= set(ignored)


def test_compose_runs_two_replicas_behind_haproxy_after_a_one_off_migration():
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "gateway1", "gateway2", "haproxy"}
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("gateway1", "gateway2"):
        gateway = services[name]
        assert "command" not in gateway  # the image's default: serve, which never migrates
        assert gateway["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert gateway["environment"]["DATABASE_URL"].startswith("postgres://")
        assert gateway["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert "ports" not in gateway  # reached through haproxy only
    assert services["haproxy"]["ports"] == ["8000:8000"]
    config = (REPO_ROOT / "docker" / "haproxy.cfg").read_text()
    assert "server gateway1 gateway1:8000 check" in config and "server gateway2 gateway2:8000 check" in config
    assert "uri /healthz/live" in config


def test_the_compose_haproxy_config_is_valid():
    binary = require_binary("haproxy")
    checked = subprocess.run([binary, "-c", "-f", str(REPO_ROOT / "docker" / "haproxy.cfg")], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
    assert checked.returncode == 0, checked.stderr  # (gateway1/2 resolve only inside compose: a warning here)
