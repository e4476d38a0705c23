"""The request log as the in-process live gateway left it."""


def logged_rows() -> list:
    """The request-log rows so far, oldest first (the live gateway runs in this process: flush its buffer first)."""
    from api.gateway import gateway
    from usage.models import RequestLog

    gateway.drain_threadsafe()
    return list(RequestLog.objects.order_by("created_at", "id"))
