"""A system daemon run for a test (haproxy, pgbouncer: Debian's packages): a free port on loopback, a temporary
directory for its configuration and log, and a stop that always ends the process and removes the directory.

    class Haproxy(Daemon):
        name = "haproxy"
        def start(self) -> "Haproxy":  # writes its config under self.directory, listens on self.port
            self.process = subprocess.Popen([self.binary(), ...])
            ...
"""

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from tests.support.live_server import free_port


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Daemon:
    name: str  # the program, as installed (/usr/sbin/<name> where it is not on PATH)

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix=f"llmproxy-{self.name}-"))
        self.process: subprocess.Popen | None = None

    def binary(self) -> str:
        return shutil.which(self.name) or f"/usr/sbin/{self.name}"

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
