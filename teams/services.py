"""Writing teams and memberships: the admin, the commands and the policy file all call these."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from teams.groups import TEAM_ADMINS, TEAM_MEMBERS, ensure_groups
from teams.models import BudgetPeriod, Membership, Role, Team


class TeamNotFound(Exception):
    pass


def create_team(
    *,
    name: str,
    models: list[str] | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    max_budget_usd: Decimal | None = None,
    budget_period: str = BudgetPeriod.MONTH,
    alert_percent: int | None = None,
) -> Team:
    team = Team(
        name=name,
        allowed_models=",".join(models or []),
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        max_budget_usd=max_budget_usd,
        budget_period=budget_period,
        alert_percent=alert_percent,
    )
    team.full_clean()
    team.save()
    return team


def get_team(name: str) -> Team:
    try:
        return Team.objects.get(name=name)
    except Team.DoesNotExist:
        raise TeamNotFound(name) from None


@transaction.atomic
def add_team_member(*, team: Team, user, role: str) -> tuple[Membership, bool]:
    """Make `user` a member of `team` with `role` (changing the role of an existing membership).

    Returns (membership, created). The user becomes staff (to log into the admin) and sits in the group of each
    role they hold in any team (see `sync_team_groups`, which the Membership signals also run)."""
    if role not in Role.values:
        raise ValueError(f"role must be one of {', '.join(Role.values)}, not '{role}'")
    membership, created = Membership.objects.get_or_create(user=user, team=team, defaults={"role": role})
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership, created


@transaction.atomic
def remove_team_member(*, team: Team, user) -> bool:
    deleted, _ = Membership.objects.filter(user=user, team=team).delete()
    return deleted > 0


def sync_team_groups(user_id: int) -> None:
    """The user is in "Team admins" while they administer any team and in "Team members" while they are a plain
    member of any team; a membership also makes them staff (never the reverse: staff may come from elsewhere)."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:  # the user is being deleted (memberships go with them)
        return
    roles = set(Membership.objects.filter(user_id=user_id).values_list("role", flat=True))
    groups = team_groups()
    for role, group_name in ((Role.ADMIN, TEAM_ADMINS), (Role.MEMBER, TEAM_MEMBERS)):
        if role in roles:
            user.groups.add(groups[group_name])
        else:
            user.groups.remove(groups[group_name])
    if roles and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


def team_groups() -> dict[str, Group]:
    groups = {group.name: group for group in Group.objects.filter(name__in=[TEAM_ADMINS, TEAM_MEMBERS])}
    if len(groups) == 2:
        return groups
    return ensure_groups(Group, Permission)
