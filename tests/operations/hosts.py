"""Test hosts, each with its own network address: network namespaces on a bridge when this machine allows it (root
and `ip netns`), else loopback addresses (127.0.0.11, .12, ...). LLMPROXY_TEST_HOSTS=loopback forces the second.

Namespaces: the machine (root namespace) owns a bridge with the subnet's .1 address; host i is a namespace with a
veth into the bridge at .1i. A host reaches nothing of the machine but that network: PostgreSQL, Redis and the
fake provider are reached through relays on the bridge address (tests/operations/relay.py), and the load balancer
and the test reach the hosts at their addresses, as they would reach separate machines on one network. Each host
serves on the same port (8000), as separate machines would.

Loopback: the hosts differ by address only; they share the machine's network, so services are reached directly.
"""

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from tests.support.live_server import free_port
from tests.support.server_process import REPO_ROOT

HOST_PORT = 8000


@dataclass
class Host:
    name: str
    address: str
    port: int
    prefix: list[str] = field(default_factory=list)  # runs a command on the host (ip netns exec NAME)


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)


def namespaces_work() -> bool:
    if os.environ.get("LLMPROXY_TEST_HOSTS") == "loopback" or os.geteuid() != 0 or not shutil.which("ip"):
        return False
    probe = f"lpprobe{os.getpid()}"
    try:
        run("ip", "netns", "add", probe)
    except (subprocess.SubprocessError, OSError):
        return False
    run("ip", "netns", "del", probe)
    return True


def free_subnet() -> str:
    """A 10.x.y.0/24 that no interface of the machine uses (the first three octets)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=30).stdout
    while True:
        subnet = f"10.{random.randint(64, 127)}.{random.randint(0, 255)}"
        if f" {subnet}." not in used:
            return subnet


class HostNetwork:
    """`count` hosts; `service_url(url)` rewrites a machine service's URL into the one the hosts use."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.mode = "netns" if namespaces_work() else "loopback"
        self.hosts: list[Host] = []
        self.tag = f"{os.getpid() % 100000}"
        self.bridge = f"lpb{self.tag}"
        self.subnet = free_subnet() if self.mode == "netns" else ""
        self.relay: subprocess.Popen | None = None
        self._relayed: dict[str, int] = {}
        self._namespaces: list[str] = []

    @property
    def services_address(self) -> str:
        return f"{self.subnet}.1" if self.mode == "netns" else "127.0.0.1"

    def start(self, services: list[str]) -> "HostNetwork":
        """`services`: host:port of each machine service the hosts must reach (relayed in namespace mode)."""
        if self.mode == "loopback":
            self.hosts = [Host(f"host{i}", f"127.0.0.{10 + i}", free_port()) for i in range(1, self.count + 1)]
            return self
        try:
            run("ip", "link", "add", self.bridge, "type", "bridge")
            run("ip", "addr", "add", f"{self.services_address}/24", "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            for i in range(1, self.count + 1):
                self.hosts.append(self._add_namespace(i))
            self._start_relay(services)
        except BaseException:
            self.stop()
            raise
        return self

    def _add_namespace(self, i: int) -> Host:
        namespace, outside, inside = f"lph{self.tag}-{i}", f"lpv{self.tag}-{i}", f"lpi{self.tag}-{i}"
        address = f"{self.subnet}.{10 + i}"
        run("ip", "netns", "add", namespace)
        self._namespaces.append(namespace)
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        run("ip", "link", "set", inside, "netns", namespace)
        run("ip", "link", "set", outside, "master", self.bridge)
        run("ip", "link", "set", outside, "up")
        in_namespace = ["ip", "netns", "exec", namespace]
        run(*in_namespace, "ip", "addr", "add", f"{address}/24", "dev", inside)
        run(*in_namespace, "ip", "link", "set", inside, "up")
        run(*in_namespace, "ip", "link", "set", "lo", "up")
        return Host(f"host{i}", address, HOST_PORT, in_namespace)

    def _start_relay(self, services: list[str]) -> None:
        command = [sys.executable, "-m", "tests.operations.relay", self.services_address, *services]
        self.relay = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        line = self.relay.stdout.readline()
        if not line:
            raise RuntimeError("the relay process did not start")
        self._relayed = json.loads(line)

    def service_url(self, url: str) -> str:
        """The URL a host uses for a service the machine reaches at `url` (postgres://, redis://, http://)."""
        if self.mode == "loopback":
            return url
        parts = urlsplit(url)
        port = self._relayed[f"{parts.hostname}:{parts.port}"]
        credentials = url.split("//", 1)[1].split("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{credentials}{self.services_address}:{port}"))

    def allowed_hosts(self) -> str:
        return ",".join(["localhost", "127.0.0.1", *(host.address for host in self.hosts)])

    def stop(self) -> None:
        if self.relay is not None and self.relay.poll() is None:
            self.relay.terminate()
            self.relay.wait(timeout=10)
        for namespace in self._namespaces:  # deleting a namespace deletes its veth pair
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        self._namespaces.clear()
        if self.mode == "netns":
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)
