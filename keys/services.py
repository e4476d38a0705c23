"""Writing keys: the admin and the management commands both call these."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from keys.hashing import display_prefix, generate_key, hash_key
from keys.models import ApiKey
from teams.models import Team

DEFAULT_GRACE_HOURS = 24


class ApiKeyNotFound(Exception):
    pass


class CannotRotate(Exception):
    """The key is revoked or expired: a new secret for it would not work either."""


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def create_api_key(
    *,
    name: str,
    models: list[str] | None = None,
    expires_in_days: int | None = None,
    expires_at=None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    max_budget_usd: Decimal | None = None,
    budget_period: str = "month",
    team: Team | None = None,
    created_by=None,
    alert_percent: int | None = None,
) -> CreatedKey:
    plaintext = generate_key()
    if expires_in_days is not None:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    api_key = ApiKey(
        name=name,
        prefix=display_prefix(plaintext),
        key_hash=hash_key(plaintext),
        allowed_models=",".join(models or []),
        expires_at=expires_at,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        max_budget_usd=max_budget_usd,
        budget_period=budget_period,
        team=team,
        created_by=created_by,
        alert_percent=alert_percent,
    )
    api_key.full_clean()
    api_key.save()
    return CreatedKey(api_key=api_key, plaintext=plaintext)


UNCHANGED = object()


def set_api_key_limits(*, name: str, **limits) -> ApiKey:
    """Change rpm_limit / tpm_limit / max_budget_usd / budget_period; a value of None removes that limit."""
    try:
        api_key = ApiKey.objects.get(name=name)
    except ApiKey.DoesNotExist:
        raise ApiKeyNotFound(name) from None
    for field, value in limits.items():
        if value is not UNCHANGED:
            setattr(api_key, field, value)
    api_key.full_clean()
    api_key.save()
    return api_key


def revoke_api_key(*, name: str) -> ApiKey:
    with transaction.atomic():
        try:
            api_key = ApiKey.objects.select_for_update().get(name=name)
        except ApiKey.DoesNotExist:
            raise ApiKeyNotFound(name) from None
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
    return api_key


def rotate_api_key(*, name: str, grace_hours: float = DEFAULT_GRACE_HOURS) -> CreatedKey:
    """Give the key a new secret (returned once); the old one keeps working for `grace_hours`, then stops.

    The key keeps its row (id, name, limits, usage history). Only the latest replaced secret is kept: rotating
    again ends the grace of the one before at once."""
    if grace_hours < 0:
        raise ValueError("grace_hours cannot be negative")
    plaintext = generate_key()
    now = timezone.now()
    with transaction.atomic():
        try:
            api_key = ApiKey.objects.select_for_update().get(name=name)
        except ApiKey.DoesNotExist:
            raise ApiKeyNotFound(name) from None
        if api_key.revoked_at is not None:
            raise CannotRotate(f"The API key '{name}' is revoked: create a new key instead.")
        if api_key.expires_at is not None and api_key.expires_at <= now:
            raise CannotRotate(f"The API key '{name}' has expired: create a new key instead.")
        api_key.previous_key_hash = api_key.key_hash
        api_key.previous_prefix = api_key.prefix
        api_key.previous_expires_at = now + timedelta(hours=grace_hours)
        api_key.rotated_at = now
        api_key.key_hash = hash_key(plaintext)
        api_key.prefix = display_prefix(plaintext)
        api_key.save(
            update_fields=["previous_key_hash", "previous_prefix", "previous_expires_at", "rotated_at", "key_hash",
                           "prefix"]
        )  # fmt: skip
    return CreatedKey(api_key=api_key, plaintext=plaintext)
