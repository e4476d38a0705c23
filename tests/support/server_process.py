"""The gateway as a separate uvicorn process (several workers, a graceful SIGTERM), against the test database."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.live_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class GatewayProcess:
    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "tests.settings", **env}
        self.process: subprocess.Popen | None = None
        # stderr to a file, not a pipe: nobody reads a pipe while the server runs, and a full one would block it.
        self.log_file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as this object)

    def log(self) -> str:
        self.log_file.seek(0)
        return self.log_file.read()

    def start(self, timeout: float = 60) -> "GatewayProcess":
        command = [sys.executable, "-m", "uvicorn", "llmproxy_site.asgi:application", "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stderr=self.log_file, text=True)
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
