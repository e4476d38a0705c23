"""Exit 0 when the PostgreSQL server in argv[1] (a postgres:// URL) accepts connections."""

import sys

import psycopg

try:
    url = sys.argv[1].replace("postgres://", "postgresql://", 1).rsplit("/", 1)[0] + "/postgres"
    psycopg.connect(url, connect_timeout=3).close()
except Exception as exc:  # any failure means "not reachable"
    print(f"postgres: {type(exc).__name__}", file=sys.stderr)
    sys.exit(1)
