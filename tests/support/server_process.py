"""The gateway as a separate uvicorn process (several workers, a graceful SIGTERM or a SIGKILL), against the test
database; `prefix` runs it elsewhere, e.g. `ip netns exec NAME` on a test host with its own network."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.live_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class GatewayProcess:
    def __init__(self, database_url: str, *, workers: int = 1, host: str = "127.0.0.1", port: int | None = None,
                 prefix: Sequence[str] = (), **env: str) -> None:  # fmt: skip
        self.host, self.port, self.workers, self.prefix = host, port or free_port(), workers, list(prefix)
        self.url = f"http://{host}:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "tests.settings", **env}
        self.process: subprocess.Popen | None = None
        # stderr to a file, not a pipe: nobody reads a pipe while the server runs, and a full one would block it.
        self.log_file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as this object)

    def log(self) -> str:
        self.log_file.seek(0)
        return self.log_file.read()

    def start(self, timeout: float = 60) -> "GatewayProcess":
        command = [*self.prefix, sys.executable, "-m", "uvicorn", "llmproxy_site.asgi:application", "--host",
                   self.host, "--port", str(self.port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        # Its own process group: kill() takes the workers down with it, as a crash of the host would.
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self.env, stderr=self.log_file, text=True, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway process exited: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gateway process did not become healthy")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful stop, as a process manager sends it) and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self, timeout: float = 10) -> None:
        """SIGKILL the server and all its workers at once: no shutdown, no flush (a crashed host). Returns once
        nothing of it is left: no process, and its port refuses connections (the kernel closes a killed process's
        sockets a few milliseconds after the process is gone: until then the port still accepts)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + timeout
        while (group_alive(self.process.pid) or self.accepts()) and time.monotonic() < deadline:
            time.sleep(0.002)

    def accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False


def group_alive(group: int) -> bool:
    """Whether a process of this process group still runs (zombies excepted)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False
