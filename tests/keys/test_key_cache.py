"""The key cache: unknown tokens never evict known keys, cost one lookup each, and a stale read never sticks."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from keys.hashing import generate_key
from keys.lookup import InvalidApiKey, KeyCache, load_key_record
from keys.services import create_api_key, revoke_api_key
from routing.versioning import read_policy_version

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_flood_of_unknown_tokens_never_evicts_a_known_key():
    created = create_api_key(name="app")

    async def scenario() -> tuple[int, int]:
        cache = KeyCache(max_unknown=50)
        await cache.authenticate(created.plaintext, version="v")
        for _ in range(120):  # more unknown tokens than the unknown cache holds
            with pytest.raises(InvalidApiKey, match="Invalid API key"):
                await cache.authenticate(generate_key(), version="v")
        before = cache.lookups
        assert (await cache.authenticate(created.plaintext, version="v")).name == "app"
        return before, cache.lookups

    before, after = asyncio.run(scenario())
    assert before == 121 and after == before  # the known key was still cached: no new lookup


def test_a_repeated_unknown_token_costs_one_lookup():
    async def scenario() -> int:
        cache = KeyCache()
        stale = generate_key()  # e.g. a deleted key an app keeps sending
        for _ in range(20):
            with pytest.raises(InvalidApiKey):
                await cache.authenticate(stale, version="v")
        return cache.lookups

    assert asyncio.run(scenario()) == 1


def test_a_key_created_after_a_miss_works_once_the_version_changes():
    token = generate_key()

    async def scenario() -> str:
        cache = KeyCache()
        with pytest.raises(InvalidApiKey):
            await cache.authenticate(token, version=await sync_to_async(read_policy_version)())
        from keys.hashing import display_prefix, hash_key
        from keys.models import ApiKey

        await sync_to_async(ApiKey.objects.create)(name="late", prefix=display_prefix(token), key_hash=hash_key(token))
        from routing.versioning import bump_policy_version

        version = await sync_to_async(bump_policy_version)()
        return (await cache.authenticate(token, version=version)).name

    assert asyncio.run(scenario()) == "late"


def test_a_read_that_started_before_a_revocation_never_fills_the_new_cache():
    """The interleaving of issue 8 item 16: read (active) → revoke commits → cache cleared → read stored."""
    victim = create_api_key(name="victim")
    other = create_api_key(name="other")

    async def scenario() -> None:
        read_done, release = asyncio.Event(), asyncio.Event()
        gated_once = []

        async def gated_loader(key_hash: str):
            record = await load_key_record(key_hash)  # the real query, before the revocation commits
            if not gated_once:
                gated_once.append(True)
                read_done.set()
                await release.wait()
            return record

        cache = KeyCache(loader=gated_loader)
        old_version = await sync_to_async(read_policy_version)()
        stale_read = asyncio.create_task(cache.authenticate(victim.plaintext, version=old_version))
        await read_done.wait()
        await sync_to_async(revoke_api_key)(name="victim")
        new_version = await sync_to_async(read_policy_version)()
        assert new_version != old_version
        await cache.authenticate(other.plaintext, version=new_version)  # this request clears the cache
        release.set()
        await stale_read  # it began before the revocation: it may still be answered
        with pytest.raises(InvalidApiKey, match="revoked"):
            await cache.authenticate(victim.plaintext, version=new_version)

    asyncio.run(scenario())


def test_a_short_token_with_the_right_prefix_is_not_told_to_start_with_the_prefix():
    async def scenario() -> str:
        with pytest.raises(InvalidApiKey) as caught:
            await KeyCache().authenticate("llmp_short", version="v")
        return str(caught.value)

    message = asyncio.run(scenario())
    assert "start with" not in message and message == "Invalid API key."
