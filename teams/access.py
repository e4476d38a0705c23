"""Which teams a user may see or administer: the one rule every admin page filters by.

None means "no restriction" (a superuser); an empty set means "no team at all".
"""

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from teams.models import Membership, Role


def administered_team_ids(user: AbstractBaseUser | AnonymousUser) -> set[int] | None:
    if not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return None
    return set(Membership.objects.filter(user=user, role=Role.ADMIN).values_list("team_id", flat=True))


def visible_team_ids(user: AbstractBaseUser | AnonymousUser) -> set[int] | None:
    if not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return None
    return set(Membership.objects.filter(user=user).values_list("team_id", flat=True))


def administers(user: AbstractBaseUser | AnonymousUser, team_id: int | None) -> bool:
    """May `user` manage objects of team `team_id`? A teamless object is for superusers only."""
    team_ids = administered_team_ids(user)
    return team_ids is None or (team_id is not None and team_id in team_ids)


def sees(user: AbstractBaseUser | AnonymousUser, team_id: int | None) -> bool:
    team_ids = visible_team_ids(user)
    return team_ids is None or (team_id is not None and team_id in team_ids)
