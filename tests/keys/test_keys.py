import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from keys.lookup import InvalidApiKey, KeyCache
from keys.models import ApiKey
from keys.services import create_api_key, revoke_api_key
from routing.versioning import read_policy_version

pytestmark = pytest.mark.django_db(transaction=True)


def authenticate(cache: KeyCache, token: str | None, version: str | None = "v"):
    return asyncio.run(cache.authenticate(token, version=version))


def test_only_hash_and_prefix_are_stored():
    created = create_api_key(name="app", models=["gpt-4o", "fast"])
    row = ApiKey.objects.get(name="app")
    stored = " ".join(str(value) for value in row.__dict__.values())
    assert created.plaintext not in stored
    assert created.plaintext.startswith(row.prefix)
    assert row.model_allowlist == ["gpt-4o", "fast"]


def test_lookup_accepts_a_valid_key_and_returns_its_allowlist():
    created = create_api_key(name="app", models=["gpt-4o"])
    record = authenticate(KeyCache(), created.plaintext)
    assert record.name == "app"
    assert record.allowed_models == frozenset({"gpt-4o"})


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "Missing"),
        ("", "Missing"),
        ("sk-abcdefghijklmnopqrstuvwxyz", "Malformed"),
        ("llmp_" + "x" * 43, "Invalid"),
    ],
)
def test_lookup_rejects_bad_tokens(token, reason):
    with pytest.raises(InvalidApiKey, match=reason):
        authenticate(KeyCache(), token)


def test_revoked_key_is_rejected_once_the_version_changes():
    created = create_api_key(name="app")
    cache = KeyCache()
    authenticate(cache, created.plaintext, version=read_policy_version())
    revoke_api_key(name="app")
    with pytest.raises(InvalidApiKey, match="revoked"):
        authenticate(cache, created.plaintext, version=read_policy_version())


def test_expired_key_is_rejected():
    created = create_api_key(name="app", expires_in_days=1)
    ApiKey.objects.filter(name="app").update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvalidApiKey, match="expired"):
        authenticate(KeyCache(), created.plaintext)


def test_last_used_is_written_at_most_once_per_window():
    created = create_api_key(name="app")
    cache = KeyCache(last_used_resolution=timedelta(hours=1))

    async def use_twice():
        await cache.authenticate(created.plaintext, version="v")
        await cache.drain()
        first = (await ApiKey.objects.aget(name="app")).last_used_at
        await ApiKey.objects.filter(name="app").aupdate(last_used_at=None)
        await cache.authenticate(created.plaintext, version="v")
        await cache.drain()
        second = (await ApiKey.objects.aget(name="app")).last_used_at
        return first, second

    first, second = asyncio.run(use_twice())
    assert first is not None
    assert second is None  # the second use fell inside the window: no write


def test_key_edits_bump_the_policy_version():
    before = read_policy_version()
    create_api_key(name="app")
    after_create = read_policy_version()
    revoke_api_key(name="app")
    assert before != after_create != read_policy_version()
