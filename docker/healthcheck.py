"""The container's health check: exit 0 when GET /healthz/live answers 200 within the timeout, else 1.

Liveness only (the process answers): a database outage must not mark every replica unhealthy at once while they
still serve cached keys; readiness (/healthz/ready) is for rollouts. Standard library only, no proxy from the
environment (HTTP_PROXY must not catch a request to 127.0.0.1)."""

import os
import sys
import urllib.request


def main() -> int:
    url = os.environ.get("HEALTHCHECK_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz/live"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT_SECONDS", "2"))) as response:
            return 0 if response.status == 200 else 1
    except Exception as exc:  # refused, timed out, an error status: unhealthy
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
