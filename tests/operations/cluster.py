"""Helpers of the operations tests: the Debian programs they drive, and gateway hosts behind haproxy."""

import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import database_url_for_subprocess
from tests.operations.hosts import HostNetwork
from tests.support.fake_control import FakeProviderProcess
from tests.support.load_balancer import Haproxy
from tests.support.server_process import GatewayProcess
from tests.usage.conftest import redis_url


def require_binary(name: str) -> str:
    """A Debian program the operations tests drive: skipped where it is missing, except in CI (`make ops-deps`)."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        message = f"{name} is not installed: `make ops-deps` installs it (Debian's package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def health_paths(url: str) -> dict[str, str | None]:
    """What the balancer checks: /healthz/ready and /healthz/live where they exist, else /healthz alone."""
    if httpx.get(f"{url}/healthz/live", timeout=5).status_code != 200:
        return {"ready_path": None, "live_path": "/healthz"}
    ready = httpx.get(f"{url}/healthz/ready", timeout=5).status_code != 404
    return {"ready_path": "/healthz/ready" if ready else None, "live_path": "/healthz/live"}


@dataclass
class Cluster:
    network: HostNetwork
    provider: FakeProviderProcess
    gateways: dict[str, GatewayProcess] = field(default_factory=dict)
    balancer: Haproxy | None = None

    @property
    def provider_base(self) -> str:
        """The fake provider's OpenAI base URL as the hosts reach it."""
        return self.network.service_url(self.provider.url) + "/v1"

    def start_gateways(self, **env: str) -> None:
        """A gateway with two workers on every host (own metrics directory, shared database and Redis), then
        haproxy in front of them once each is healthy."""
        database_url = self.network.service_url(database_url_for_subprocess())
        shared = {
            "REDIS_URL": self.network.service_url(redis_url()),
            "LLMPROXY_REDIS_PREFIX": f"llmproxy-ops-{uuid.uuid4().hex}:",
            "DJANGO_ALLOWED_HOSTS": self.network.allowed_hosts(),
            "LLMPROXY_POLICY_REFRESH_SECONDS": "0.25",  # the default, not the tests' 0
            "LLMPROXY_DB_POOL_SIZE": "4",
            **env,
        }
        for host in self.network.hosts:
            self.gateways[host.name] = GatewayProcess(
                database_url, workers=2, host=host.address, port=host.port, prefix=host.prefix,
                PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix=f"llmproxy-metrics-{host.name}-"), **shared,
            )  # fmt: skip
        with ThreadPoolExecutor(len(self.gateways)) as pool:
            list(pool.map(GatewayProcess.start, self.gateways.values()))
        first = next(iter(self.gateways.values()))
        servers = {name: f"{gateway.host}:{gateway.port}" for name, gateway in self.gateways.items()}
        self.balancer = Haproxy(servers, **health_paths(first.url)).start()
        for name in servers:  # and ready: the traffic goes where the README's configuration sends it
            self.balancer.wait_for(name, "UP")

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for gateway in self.gateways.values():
            gateway.stop()
            shutil.rmtree(gateway.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        self.network.stop()
        self.provider.stop()
