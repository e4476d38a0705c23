"""Lockout after repeated failed logins: N failures per username and client address within a window, and a
ceiling per username across addresses (so rotating addresses does not give unlimited guesses).

Every attempt is counted *before* its password is checked: the attempt's row is written first (committed on its
own), then the rows are counted. Of any number of parallel guesses, the k-th to commit sees the k-1 before it, so
at most the limit reach the password check; a check made before counting would let them all through. The row stays
as the failure unless the login succeeds. Counts live in the database (one indexed query per login attempt, never
on the API's path), shared by every worker and host. Locked out, even the right password is refused until the
window has passed.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from lockout.models import FailedLogin


@dataclass(frozen=True)
class Lockout:
    until: datetime
    across_addresses: bool  # the per-username ceiling, not this address's own failures


def window() -> timedelta:
    return timedelta(minutes=settings.LLMPROXY_ADMIN_LOGIN_LOCKOUT_MINUTES)


def normalise_username(username: str | None) -> str:
    return (username or "").strip().lower()[:150]


def client_address(request: HttpRequest | None) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wrote. Behind a proxy, run uvicorn with
    # --proxy-headers --forwarded-allow-ips=<proxy> so that REMOTE_ADDR is the real client.
    return (request.META.get("REMOTE_ADDR") or None) if request is not None else None


def record_failure(*, username: str | None, ip_address: str | None) -> FailedLogin:
    now = timezone.now()
    FailedLogin.objects.filter(attempted_at__lt=now - window()).delete()  # failures are rare: prune as we go
    return FailedLogin.objects.create(username=normalise_username(username), ip_address=ip_address, attempted_at=now)


def clear_failures(*, username: str | None, ip_address: str | None) -> None:
    FailedLogin.objects.filter(username=normalise_username(username), ip_address=ip_address).delete()


def begin_attempt(*, username: str | None, ip_address: str | None) -> Lockout | None:
    """Count a login attempt as a failure, then decide: the Lockout that refuses it, or None to check the password.

    A refused attempt takes its row back, so hammering a locked login does not extend the lock.
    """
    attempt = record_failure(username=username, ip_address=ip_address)
    lockout = current_lockout(username=username, ip_address=ip_address, excluding=attempt.pk)
    if lockout is not None:
        attempt.delete()
    return lockout


def _nth_newest(failures: QuerySet, n: int) -> datetime | None:
    times = list(failures.order_by("-attempted_at").values_list("attempted_at", flat=True)[: max(n, 1)])
    return times[-1] if len(times) >= n else None


def current_lockout(*, username: str | None, ip_address: str | None, excluding: int | None = None) -> Lockout | None:
    """The lockout that refuses another attempt now (not counting the row `excluding`), or None."""
    recent = FailedLogin.objects.filter(
        username=normalise_username(username), attempted_at__gte=timezone.now() - window()
    )
    if excluding is not None:
        recent = recent.exclude(pk=excluding)
    per_address = _nth_newest(recent.filter(ip_address=ip_address), settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES)
    per_username = _nth_newest(recent, settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES_PER_USERNAME)
    if per_username is not None and (per_address is None or per_username > per_address):
        return Lockout(until=per_username + window(), across_addresses=True)  # the limit-th newest leaves then
    if per_address is not None:
        return Lockout(until=per_address + window(), across_addresses=False)
    return None


def locked_until(*, username: str | None, ip_address: str | None) -> datetime | None:
    """When the lockout ends, or None when another attempt is allowed."""
    lockout = current_lockout(username=username, ip_address=ip_address)
    return lockout.until if lockout is not None else None
