"""The request log as the in-process live gateway left it."""


def logged_rows() -> list:
    """The request-log rows so far, oldest first (the live gateway runs in this process: flush its buffer first)."""
    from api.gateway import gateway
    from usage.models import RequestLog

    gateway.drain_threadsafe()
    return list(RequestLog.objects.order_by("created_at", "id"))


def rows_once_logged(count: int, timeout: float = 5.0) -> list:
    """The rows once there are `count` of them: a stream's row is written just after its last event went out, so the
    client may finish reading first."""
    import time

    deadline = time.monotonic() + timeout
    while len(rows := logged_rows()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return rows
