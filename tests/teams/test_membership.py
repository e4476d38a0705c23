"""Memberships: the groups and staff flag they give, and which teams a user may see or administer."""

import pytest
from django.contrib.auth.models import Group

from teams.access import administered_team_ids, administers, sees, visible_team_ids
from teams.groups import TEAM_ADMINS, TEAM_MEMBERS
from teams.models import Membership
from teams.services import add_team_member, create_team, remove_team_member


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


@pytest.mark.django_db  # not transactional: sees the database exactly as the migrations left it
def test_the_migration_creates_both_groups_with_their_permissions():
    permissions = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.filter(name__in=[TEAM_ADMINS, TEAM_MEMBERS])
    }
    reading = {"usage.view_requestlog", "usage.view_dailyusage", "usage.view_budgetalert", "teams.view_team"}
    assert permissions == {
        TEAM_ADMINS: reading | {"keys.view_apikey", "keys.add_apikey", "keys.change_apikey", "admin.view_logentry"},
        TEAM_MEMBERS: reading,
    }


@pytest.mark.django_db(transaction=True)
def test_a_member_becomes_staff_in_the_group_of_their_role(django_user_model):
    research, ops = create_team(name="research"), create_team(name="ops")
    alice = django_user_model.objects.create_user("alice", password="x")
    _, created = add_team_member(team=research, user=alice, role="member")
    alice.refresh_from_db()
    assert created and alice.is_staff and not alice.is_superuser
    assert group_names(alice) == {TEAM_MEMBERS}
    assert alice.has_perm("usage.view_requestlog") and not alice.has_perm("keys.add_apikey")

    _, created = add_team_member(team=research, user=alice, role="admin")  # a role change, not a second row
    alice = django_user_model.objects.get(pk=alice.pk)  # (permissions are cached per user object)
    assert not created and Membership.objects.get(user=alice).role == "admin"
    assert group_names(alice) == {TEAM_ADMINS} and alice.has_perm("keys.add_apikey")

    add_team_member(team=ops, user=alice, role="member")  # admin of one team, member of another: both groups
    assert group_names(alice) == {TEAM_ADMINS, TEAM_MEMBERS}
    remove_team_member(team=research, user=alice)
    assert group_names(alice) == {TEAM_MEMBERS}
    remove_team_member(team=ops, user=alice)
    assert group_names(alice) == set()


@pytest.mark.django_db(transaction=True)
def test_groups_follow_memberships_written_any_way_and_come_back_after_a_flush(django_user_model):
    Group.objects.all().delete()  # as after a flush: permissions stay, groups are gone
    bob = django_user_model.objects.create_user("bob", password="x")
    Membership.objects.create(user=bob, team=create_team(name="research"), role="admin")  # e.g. the admin's inline
    bob = django_user_model.objects.get(pk=bob.pk)
    assert bob.is_staff and group_names(bob) == {TEAM_ADMINS} and bob.has_perm("keys.change_apikey")
    Membership.objects.filter(user=bob).delete()  # a queryset delete sends post_delete per row too
    assert group_names(bob) == set()
    assert django_user_model.objects.get(pk=bob.pk).is_staff  # staff may have other reasons: left as it is


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_or_a_team_takes_the_memberships_with_it(django_user_model):
    research = create_team(name="research")
    carol = django_user_model.objects.create_user("carol", password="x")
    dave = django_user_model.objects.create_user("dave", password="x")
    add_team_member(team=research, user=carol, role="admin")
    add_team_member(team=research, user=dave, role="member")
    carol.delete()
    assert list(Membership.objects.values_list("user__username", flat=True)) == ["dave"]
    research.delete()
    assert not Membership.objects.exists() and group_names(dave) == set()


def test_an_unknown_role_is_refused(db, django_user_model):
    with pytest.raises(ValueError, match="role must be one of admin, member"):
        add_team_member(team=create_team(name="t"), user=django_user_model.objects.create_user("x"), role="owner")


@pytest.mark.django_db(transaction=True)
def test_access_helpers_say_which_teams_a_user_administers_and_sees(django_user_model):
    research, ops, other = create_team(name="research"), create_team(name="ops"), create_team(name="other")
    admin = django_user_model.objects.create_user("admin-of-research", password="x")
    add_team_member(team=research, user=admin, role="admin")
    add_team_member(team=ops, user=admin, role="member")
    member = django_user_model.objects.create_user("member", password="x")
    add_team_member(team=ops, user=member, role="member")
    root = django_user_model.objects.create_superuser("root", password="x")
    stranger = django_user_model.objects.create_user("stranger", password="x", is_staff=True)

    assert administered_team_ids(admin) == {research.pk} and visible_team_ids(admin) == {research.pk, ops.pk}
    assert administered_team_ids(member) == set() and visible_team_ids(member) == {ops.pk}
    assert administered_team_ids(root) is None and visible_team_ids(root) is None  # no restriction
    assert administered_team_ids(stranger) == set() == visible_team_ids(stranger)
    assert administers(admin, research.pk) and not administers(admin, ops.pk) and not administers(admin, None)
    assert sees(admin, ops.pk) and not sees(admin, other.pk) and not sees(member, None)
    assert administers(root, None) and sees(root, other.pk)
    admin.is_active = False
    assert administered_team_ids(admin) == set() and visible_team_ids(admin) == set()
