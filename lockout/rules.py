"""Lockout after repeated failed logins: N failures per username and client address within a window.

The count is read from the database (one indexed query per login attempt, never on the API's path), so it is
shared by every worker and host. Locked out, even the right password is refused until the window has passed.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from lockout.models import FailedLogin


def window() -> timedelta:
    return timedelta(minutes=settings.LLMPROXY_ADMIN_LOGIN_LOCKOUT_MINUTES)


def normalise_username(username: str | None) -> str:
    return (username or "").strip().lower()[:150]


def client_address(request: HttpRequest | None) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wrote. Behind a proxy, run uvicorn with
    # --proxy-headers --forwarded-allow-ips=<proxy> so that REMOTE_ADDR is the real client.
    return (request.META.get("REMOTE_ADDR") or None) if request is not None else None


def record_failure(*, username: str | None, ip_address: str | None) -> None:
    now = timezone.now()
    FailedLogin.objects.filter(attempted_at__lt=now - window()).delete()  # failures are rare: prune as we go
    FailedLogin.objects.create(username=normalise_username(username), ip_address=ip_address, attempted_at=now)


def clear_failures(*, username: str | None, ip_address: str | None) -> None:
    FailedLogin.objects.filter(username=normalise_username(username), ip_address=ip_address).delete()


def locked_until(*, username: str | None, ip_address: str | None) -> datetime | None:
    """When the lockout ends, or None when another attempt is allowed."""
    limit = settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES
    recent = list(
        FailedLogin.objects.filter(
            username=normalise_username(username),
            ip_address=ip_address,
            attempted_at__gte=timezone.now() - window(),
        )
        .order_by("-attempted_at")
        .values_list("attempted_at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return None
    return recent[-1] + window()  # the limit-th newest failure leaves the window then
