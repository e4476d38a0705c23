"""A key in a team through the real key cache and database: one query for key and team, none once warm, a team
edit seen at the next version, and rotation with its grace period."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from keys.hashing import hash_key
from keys.lookup import InvalidApiKey, KeyCache, TeamRecord, fetch_key_record
from keys.models import ApiKey
from keys.services import ApiKeyNotFound, CannotRotate, create_api_key, revoke_api_key, rotate_api_key
from routing.versioning import read_policy_version
from teams.models import Membership, Team
from teams.services import create_team
from tests.e2e.test_hot_path import QueryCounter

pytestmark = pytest.mark.django_db(transaction=True)


def authenticate(cache: KeyCache, token: str):
    return asyncio.run(cache.authenticate(token, version=read_policy_version()))


def test_the_lookup_loads_the_key_with_its_team_in_one_query():
    team = create_team(name="research", models=["gpt-4o", "fast"], rpm_limit=60, max_budget_usd=Decimal("5"),
                       budget_period="day", alert_percent=80)  # fmt: skip
    created = create_api_key(name="app", team=team, alert_percent=50)
    with CaptureQueriesContext(connection) as queries:
        record = fetch_key_record(hash_key(created.plaintext))
    assert len(queries) == 1
    assert record.team == TeamRecord(id=team.pk, name="research", allowed_models=frozenset({"gpt-4o", "fast"}),
                                     rpm_limit=60, tpm_limit=None, max_budget_usd=Decimal("5"), budget_period="day",
                                     alert_percent=80)  # fmt: skip
    assert record.team.has_limits and record.team_allowlist == frozenset({"gpt-4o", "fast"})
    assert record.alert_percent == 50
    assert fetch_key_record(hash_key(create_api_key(name="solo").plaintext)).team is None


def test_a_warm_team_key_makes_no_query():
    created = create_api_key(name="app", team=create_team(name="research", rpm_limit=60))
    cache = KeyCache(last_used_resolution=timedelta(hours=1))
    version = read_policy_version()

    async def warm_then_count() -> list[str]:
        await cache.authenticate(created.plaintext, version=version)
        await cache.drain()  # the first use's last-used stamp
        with QueryCounter() as counter:
            for _ in range(20):
                assert (await cache.authenticate(created.plaintext, version=version)).team.rpm_limit == 60
            await cache.drain()
        return counter.statements

    assert asyncio.run(warm_then_count()) == []
    assert cache.lookups == 1


def test_a_team_edit_bumps_the_version_and_the_cache_rebuilds_the_record():
    team = create_team(name="research", models=["gpt-4o"])
    created = create_api_key(name="app", team=team)
    cache = KeyCache()
    assert authenticate(cache, created.plaintext).team.allowed_models == frozenset({"gpt-4o"})
    before = read_policy_version()
    team.allowed_models = "gpt-4o,claude"
    team.rpm_limit = 5
    team.full_clean()
    team.save()
    assert read_policy_version() != before
    record = authenticate(cache, created.plaintext)
    assert record.team.allowed_models == frozenset({"gpt-4o", "claude"}) and record.team.rpm_limit == 5
    assert cache.lookups == 2


def test_membership_edits_and_team_deletion_bump_the_version_too(django_user_model):
    team = create_team(name="research")
    user = django_user_model.objects.create_user("alice", password="x")
    versions = [read_policy_version()]
    membership = Membership.objects.create(user=user, team=team, role="member")
    versions.append(read_policy_version())
    membership.delete()
    versions.append(read_policy_version())
    Team.objects.get(name="research").delete()
    versions.append(read_policy_version())
    assert len(set(versions)) == 4


def test_a_rotated_key_keeps_its_row_and_the_old_secret_works_until_the_grace_ends():
    created = create_api_key(name="app", team=create_team(name="research"))
    cache = KeyCache()
    assert authenticate(cache, created.plaintext).name == "app"
    rotated = rotate_api_key(name="app", grace_hours=2)
    row = ApiKey.objects.get(name="app")
    assert row.pk == created.api_key.pk and rotated.plaintext != created.plaintext
    assert row.key_hash == hash_key(rotated.plaintext) and row.previous_key_hash == hash_key(created.plaintext)
    assert row.prefix == rotated.plaintext[:12] and row.previous_prefix == created.plaintext[:12]
    assert timedelta(hours=2) - timedelta(minutes=1) < row.previous_expires_at - timezone.now() <= timedelta(hours=2)
    assert row.previous_valid_until == row.previous_expires_at and row.rotated_at is not None
    old, new = authenticate(cache, created.plaintext), authenticate(cache, rotated.plaintext)
    assert (old.id, old.name, old.team) == (new.id, new.name, new.team)
    assert old.replaced and not new.replaced and old.expires_at == row.previous_expires_at

    ApiKey.objects.filter(pk=row.pk).update(previous_expires_at=timezone.now() - timedelta(seconds=1))
    cache = KeyCache()  # (an update() sends no signal; a new process sees the row as it is)
    with pytest.raises(InvalidApiKey, match="replaced by a new one and its grace period has ended"):
        authenticate(cache, created.plaintext)
    assert authenticate(cache, rotated.plaintext).name == "app"


def test_the_grace_ends_in_a_warm_cache_too_without_any_edit():
    created = create_api_key(name="app")
    rotate_api_key(name="app", grace_hours=0.0003)  # about one second
    cache = KeyCache()
    assert authenticate(cache, created.plaintext).replaced
    deadline = timezone.now() + timedelta(seconds=10)
    while timezone.now() < deadline:
        try:
            authenticate(cache, created.plaintext)
        except InvalidApiKey as refused:
            assert "grace period has ended" in str(refused)
            break
    else:
        pytest.fail("the old secret still worked after its grace period")
    assert cache.lookups == 1  # the record was cached; its own end date stopped it


def test_the_old_secret_never_outlives_the_key():
    created = create_api_key(name="app", expires_in_days=1)
    rotate_api_key(name="app", grace_hours=48)
    row = ApiKey.objects.get(name="app")
    assert row.previous_valid_until == row.expires_at
    assert authenticate(KeyCache(), created.plaintext).expires_at == row.expires_at


def test_revoking_a_rotated_key_stops_both_secrets():
    created = create_api_key(name="app")
    rotated = rotate_api_key(name="app")
    cache = KeyCache()
    authenticate(cache, created.plaintext)
    revoke_api_key(name="app")
    for token in (created.plaintext, rotated.plaintext):
        with pytest.raises(InvalidApiKey, match="revoked"):
            authenticate(cache, token)


def test_a_second_rotation_ends_the_first_secret_at_once():
    first = create_api_key(name="app")
    second = rotate_api_key(name="app")
    third = rotate_api_key(name="app")
    cache = KeyCache()
    with pytest.raises(InvalidApiKey, match=r"^Invalid API key"):
        authenticate(cache, first.plaintext)
    assert authenticate(cache, second.plaintext).replaced and not authenticate(cache, third.plaintext).replaced


def test_a_revoked_expired_or_unknown_key_is_not_rotated():
    create_api_key(name="gone")
    revoke_api_key(name="gone")
    with pytest.raises(CannotRotate, match="revoked"):
        rotate_api_key(name="gone")
    create_api_key(name="old", expires_in_days=1)
    ApiKey.objects.filter(name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(CannotRotate, match="expired"):
        rotate_api_key(name="old")
    with pytest.raises(ApiKeyNotFound):
        rotate_api_key(name="ghost")
    assert not ApiKey.objects.exclude(previous_key_hash=None).exists()
