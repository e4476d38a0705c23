"""The balancer's health checks (tests/support/load_balancer.py, as docker/haproxy.cfg): hosts that are not ready
get no traffic; when no host is ready (an outage of what they all share), every live host gets it again."""

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.operations.cluster import require_binary
from tests.support.load_balancer import Haproxy
from tests.support.server_process import REPO_ROOT


class Host(ThreadingHTTPServer):
    """A stand-in gateway: /healthz/live always 200, /healthz/ready 200 or 503 as the test sets it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.ready = True
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Host

    def do_GET(self) -> None:
        status = 503 if self.path == "/healthz/ready" and not self.server.ready else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hosts() -> Iterator[dict[str, Host]]:
    running = {"host1": Host(), "host2": Host()}
    yield running
    for host in running.values():
        host.shutdown()
        host.server_close()


def answered_by(url: str, count: int = 20) -> Counter:
    with httpx.Client(timeout=5) as http:
        return Counter(http.get(f"{url}/v1/models").headers["x-llmproxy-host"] for _ in range(count))


def test_only_ready_hosts_get_traffic_unless_none_is_ready(hosts):
    require_binary("haproxy")
    hosts["host1"].ready = False
    servers = {name: f"127.0.0.1:{host.server_port}" for name, host in hosts.items()}
    with Haproxy(servers) as balancer:
        balancer.wait_for("host1", "DOWN")
        assert answered_by(balancer.url) == {"host2": 20}

        hosts["host2"].ready = False  # e.g. the shared database is away: neither is ready, both still answer
        balancer.wait_for("host2", "DOWN")
        assert answered_by(balancer.url) == {"host1": 10, "host2": 10}

        hosts["host1"].ready = hosts["host2"].ready = True
        balancer.wait_for("host1", "UP")
        balancer.wait_for("host2", "UP")
        assert answered_by(balancer.url) == {"host1": 10, "host2": 10}


def test_the_compose_config_checks_as_the_tested_one():
    from tests.support.load_balancer import haproxy_config

    tested = haproxy_config({"gateway1": "gateway1:8000"}, port=8000, stats_socket=REPO_ROOT / "unused.sock")
    shipped = (REPO_ROOT / "docker" / "haproxy.cfg").read_text()
    for line in tested.splitlines():
        if line.strip().startswith(("use_backend", "default_backend", "backend", "balance", "option", "http-check",
                                    "http-after-response", "retries")):  # fmt: skip
            assert line.strip() in shipped, line
