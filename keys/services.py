"""Writing keys: the admin and the management commands both call these."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from keys.hashing import display_prefix, generate_key, hash_key
from keys.models import ApiKey


class ApiKeyNotFound(Exception):
    pass


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
