"""The team commands as an operator runs them: create_team, add_team_member, create_api_key --team, rotate_api_key."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from keys.hashing import hash_key
from keys.models import ApiKey
from teams.models import Membership, Team

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_team_with_models_and_limits(manage_py):
    result = manage_py("create_team", "research", "--models", "gpt-4o-mini,fast", "--rpm", "60", "--tpm", "9000",
                       "--max-budget", "25.5", "--budget-period", "day", "--alert-percent", "80")  # fmt: skip
    assert result.stdout.splitlines() == [
        "created team: research (models: gpt-4o-mini, fast; rpm=60 tpm=9000 budget=25.5 per day, alert at 80%)"
    ]
    team = Team.objects.get(name="research")
    assert (team.allowed_models, team.rpm_limit, team.tpm_limit, team.max_budget_usd, team.budget_period) == (
        "gpt-4o-mini,fast", 60, 9000, Decimal("25.5"), "day"
    )  # fmt: skip
    assert team.alert_percent == 80
    assert (
        manage_py("create_team", "open").stdout.strip()
        == "created team: open (models: all; rpm=- tpm=- budget=- per month)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["research"], "already exists"),
        (["x", "--rpm", "0"], "--rpm expects a whole number of at least 1"),
        (["x", "--alert-percent", "150"], "--alert-percent expects a whole number from 1 to 100"),
        (["x", "--max-budget", "lots"], "--max-budget expects an amount in USD"),
    ],
)
def test_create_team_refuses_bad_input(manage_py, args, message):
    Team.objects.create(name="research")
    result = manage_py("create_team", *args, check=False)
    assert result.returncode != 0 and message in result.stderr
    assert list(Team.objects.values_list("name", flat=True)) == ["research"]


def test_add_team_member_says_what_it_did(manage_py, django_user_model):
    Team.objects.create(name="research")
    django_user_model.objects.create_user("alice", password="x")
    assert manage_py("add_team_member", "research", "alice", "--role", "member").stdout.strip() == (
        "added alice to team research as member (staff, group 'Team members': may log into /admin/)"
    )
    assert manage_py("add_team_member", "research", "alice", "--role", "admin").stdout.strip() == (
        "changed alice's role in team research from member to admin (staff, group 'Team admins': may log into /admin/)"
    )
    assert manage_py("add_team_member", "research", "alice", "--role", "admin").stdout.startswith(
        "alice already is admin of team research"
    )
    alice = django_user_model.objects.get(username="alice")
    assert alice.is_staff and list(alice.groups.values_list("name", flat=True)) == ["Team admins"]
    assert list(Membership.objects.values_list("role", flat=True)) == ["admin"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["research", "ghost", "--role", "admin"], "No user named 'ghost': create the user first"),
        (["nowhere", "alice", "--role", "admin"], "No team named 'nowhere'"),
        (["research", "alice", "--role", "owner"], "invalid choice: 'owner'"),
        (["research", "alice"], "--role"),
    ],
)
def test_add_team_member_refuses_an_unknown_user_team_or_role(manage_py, django_user_model, args, message):
    Team.objects.create(name="research")
    django_user_model.objects.create_user("alice", password="x")
    result = manage_py("add_team_member", *args, check=False)
    assert result.returncode != 0 and message in result.stderr
    assert not Membership.objects.exists()


def test_create_api_key_in_a_team_is_held_to_the_teams_limits(manage_py):
    Team.objects.create(name="research", rpm_limit=60)
    key = manage_py("create_api_key", "--name", "app", "--team", "research", "--rpm", "30", "--alert-percent", "90")
    row = ApiKey.objects.get(name="app")
    assert row.key_hash == hash_key(key.stdout.strip()) and row.team.name == "research"
    assert (row.rpm_limit, row.alert_percent) == (30, 90)
    too_much = manage_py("create_api_key", "--name", "greedy", "--team", "research", "--rpm", "61", check=False)
    assert too_much.returncode != 0 and "At most 60 requests per minute: the team 'research' has no more." in (
        too_much.stderr
    )
    nowhere = manage_py("create_api_key", "--name", "lost", "--team", "nowhere", check=False)
    assert nowhere.returncode != 0 and "No team named 'nowhere'" in nowhere.stderr
    assert "llmp_" not in too_much.stdout + nowhere.stdout
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["app"]


def test_rotate_api_key_prints_the_new_key_once_and_when_the_old_one_stops(manage_py):
    old = manage_py("create_api_key", "--name", "app").stdout.strip()
    result = manage_py("rotate_api_key", "app", "--grace-hours", "1.5")
    new = result.stdout.strip()
    assert new.startswith("llmp_") and "\n" not in new and new != old
    row = ApiKey.objects.get(name="app")
    assert row.key_hash == hash_key(new) and row.previous_key_hash == hash_key(old)
    match = re.fullmatch(
        rf"The old key {re.escape(old[:12])}… of 'app' works until (\S+ \S+) UTC, then stops\.\n", result.stderr
    )
    assert match, result.stderr
    until = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
    assert until == row.previous_expires_at.replace(microsecond=0)
    assert old not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ghost"], "No API key named 'ghost'."),
        (["gone"], "The API key 'gone' is revoked: create a new key instead."),
        (["app", "--grace-hours", "-1"], "--grace-hours cannot be negative"),
    ],
)
def test_rotate_api_key_refuses(manage_py, args, message):
    from keys.services import create_api_key, revoke_api_key

    create_api_key(name="app")
    create_api_key(name="gone")
    revoke_api_key(name="gone")
    result = manage_py("rotate_api_key", *args, check=False)
    assert result.returncode != 0 and message in result.stderr and "llmp_" not in result.stdout
    assert not ApiKey.objects.exclude(previous_key_hash=None).exists()
