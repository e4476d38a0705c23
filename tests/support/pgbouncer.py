"""PgBouncer (Debian's package) in transaction pooling mode in front of a PostgreSQL server, configured per test.

    with PgBouncer("127.0.0.1", 5432, pool_size=3) as bouncer:
        bouncer.port                       # clients connect here instead of 5432 (every database is passed on)
        bouncer.show("POOLS")              # the admin console: [{"database": ..., "sv_active": ..., ...}]

Authentication is `trust` for the one user the tests use (postgres), as the machine's PostgreSQL trusts it on
127.0.0.1. PgBouncer refuses to run as root, so as root it is started with `-u postgres`.
"""

import os
import pwd
import subprocess
import time

import psycopg

from tests.support.daemon import Daemon


class PgBouncer(Daemon):
    name = "pgbouncer"

    def __init__(self, server_host: str, server_port: int, *, pool_size: int = 3, user: str = "postgres") -> None:
        super().__init__()
        self.server = (server_host, server_port)
        self.pool_size = pool_size
        self.user = user
        self.log_path = self.directory / "pgbouncer.log"

    def config(self) -> str:
        host, port = self.server
        return f"""[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.directory / "userlist.txt"}
admin_users = {self.user}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 500
logfile = {self.log_path}
pidfile = {self.directory / "pgbouncer.pid"}
"""

    def start(self, timeout: float = 15) -> "PgBouncer":
        (self.directory / "userlist.txt").write_text(f'"{self.user}" ""\n')
        (self.directory / "pgbouncer.ini").write_text(self.config())
        command = [self.binary()]
        if os.geteuid() == 0:
            account = pwd.getpwnam(self.user)
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
            command += ["-u", self.user]
        self.process = subprocess.Popen([*command, str(self.directory / "pgbouncer.ini")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log()}")
            try:
                self.show("VERSION")
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console (simple query protocol: the console speaks no other)."""
        with psycopg.connect(host="127.0.0.1", port=self.port, dbname="pgbouncer", user=self.user,
                             autocommit=True, connect_timeout=2) as connection:  # fmt: skip
            result = connection.pgconn.exec_(f"SHOW {what}".encode())
            names = [result.fname(i).decode() for i in range(result.nfields)]
            return [
                {name: (result.get_value(row, i) or b"").decode() for i, name in enumerate(names)}
                for row in range(result.ntuples)
            ]

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
