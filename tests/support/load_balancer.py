"""HAProxy (Debian's package) in front of several gateway hosts, configured per test as docker/haproxy.cfg is.

    with Haproxy({"host1": "10.77.3.11:8000", ...}) as balancer:
        balancer.url                    # http://127.0.0.1:PORT, round robin over the hosts
        balancer.states()               # {"host1": "UP", ...}: the hosts that get traffic (stats socket)
        balancer.wait_for("host2", "DOWN")

Two backends with the same hosts: `ready` checks GET /healthz/ready and takes the traffic; `live` checks
/healthz/live and takes it only when no host is ready. A host that cannot serve is taken out, but an outage of
what every host shares (the database, Redis) does not take them all out: they still serve cached keys.
`ready_path=None`: one backend, `live`, for a gateway without /healthz/ready.

Every answer carries `x-llmproxy-host: <server name>` (the host that answered, or that haproxy tried when it
answers 502/503 itself), so a test knows which host served each request. A connection that fails is retried on
another host (`retries` + `option redispatch`); a request a host received is never sent twice (no L7 retries of a
POST). Each request gets its own connection to a host (`option http-server-close`): none is sent on a pooled
connection to a host that has just died, so a host that dies fails exactly the requests it had accepted.
"""

import socket
import subprocess
import time
from pathlib import Path

from tests.support.daemon import Daemon

CHECK_INTERVAL_MS = 200


def backend(name: str, servers: dict[str, str], *, check_path: str) -> list[str]:
    return [
        f"backend {name}",
        "    balance roundrobin",
        "    option httpchk",
        f"    http-check send meth GET uri {check_path} ver HTTP/1.1 hdr Host localhost",
        "    http-check expect status 200",
        f"    default-server inter {CHECK_INTERVAL_MS}ms fastinter {CHECK_INTERVAL_MS}ms fall 2 rise 2",
        "    http-after-response set-header x-llmproxy-host %s",
        *(f"    server {server} {address} check" for server, address in servers.items()),
    ]


def haproxy_config(servers: dict[str, str], *, port: int, stats_socket: Path, live_path: str = "/healthz/live",
                   ready_path: str | None = "/healthz/ready") -> str:  # fmt: skip
    lines = [
        "global",
        f"    stats socket {stats_socket} mode 600 level admin",
        "    maxconn 2000",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout check 1s",
        "    retries 3",
        "    option redispatch 1",
        "    option http-server-close",
        "frontend gateway",
        f"    bind 127.0.0.1:{port}",
        *(["    use_backend ready if { nbsrv(ready) gt 0 }"] if ready_path else []),
        "    default_backend live",
        *(backend("ready", servers, check_path=ready_path) if ready_path else []),
        *backend("live", servers, check_path=live_path),
    ]
    return "\n".join(lines) + "\n"


class Haproxy(Daemon):
    name = "haproxy"

    def __init__(self, servers: dict[str, str], *, ready_path: str | None = "/healthz/ready",
                 live_path: str = "/healthz/live") -> None:  # fmt: skip
        super().__init__()
        self.servers = servers
        self.ready_path, self.live_path = ready_path, live_path
        self.url = f"http://127.0.0.1:{self.port}"
        self.stats_socket = self.directory / "admin.sock"
        self.config = self.directory / "haproxy.cfg"
        self.log_file = (self.directory / "haproxy.log").open("w+")

    @property
    def primary(self) -> str:
        """The backend that takes the traffic while any of its hosts passes its check."""
        return "ready" if self.ready_path else "live"

    def start(self, timeout: float = 20) -> "Haproxy":
        binary = self.binary()
        self.config.write_text(haproxy_config(self.servers, port=self.port, stats_socket=self.stats_socket,
                                              live_path=self.live_path, ready_path=self.ready_path))  # fmt: skip
        subprocess.run([binary, "-c", "-q", "-f", str(self.config)], check=True, capture_output=True, text=True)
        self.process = subprocess.Popen([binary, "-db", "-f", str(self.config)], stdout=self.log_file,
                                        stderr=subprocess.STDOUT)  # fmt: skip
        try:
            for name in self.servers:  # every host answers; whether it is ready is the `ready` backend's business
                self.wait_for(name, "UP", backend="live", timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def command(self, line: str) -> str:
        """One command on the stats socket (e.g. "show stat"); its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self, backend: str | None = None) -> dict[str, dict[str, str]]:
        """Each server's row of `show stat` in `backend` (default: the primary): status, econ (connection errors),
        eresp (response errors), srv_abrt (transfers the server aborted), wretr/wredis (retries), hrsp_5xx, ..."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        wanted = backend or self.primary
        return {row["svname"]: row for row in rows if row["pxname"] == wanted and row["svname"] in self.servers}

    def states(self, backend: str | None = None) -> dict[str, str]:
        """Each server's status: UP, DOWN, or a transition ("UP 1/2", "DOWN 1/2")."""
        return {name: row["status"] for name, row in self.stats(backend).items()}

    def wait_for(self, name: str, status: str, *, backend: str | None = None, timeout: float = 10) -> float:
        """Poll until `name` has `status` in `backend`; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log()}")
            try:
                if self.states(backend).get(name) == status:
                    return time.monotonic() - started
            except OSError:
                pass  # the stats socket is not there yet
            time.sleep(0.02)
        raise TimeoutError(f"haproxy never saw {name} {status}: {self.states(backend)}")

    def log(self) -> str:
        self.log_file.seek(0)
        return self.log_file.read()

    def stop(self) -> None:
        super().stop()
        self.log_file.close()
