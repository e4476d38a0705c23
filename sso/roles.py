"""Which admin roles an SSO login grants: a pure function over the ID token's (and userinfo's) claims.

Groups come from one claim (default `groups`): a list of strings (a single string counts as one group).
- a group in `staff_groups` makes the user staff (an admin login with the permissions Django gives them);
- a group in `superuser_groups` makes them a superuser (and staff);
- `<team prefix><team name>:admin` or `...:member` (default prefix `llmproxy:team:`) makes them that team's admin
  or member, as `add_team_member` does; admin wins when both are listed. A team name may contain colons.
Nothing else is granted; a user whose groups grant nothing gets no admin access.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

TEAM_ROLES = ("admin", "member")


@dataclass(frozen=True)
class RoleMapping:
    groups_claim: str = "groups"
    staff_groups: frozenset[str] = frozenset({"llmproxy:staff"})
    superuser_groups: frozenset[str] = frozenset({"llmproxy:superuser"})
    team_prefix: str = "llmproxy:team:"


@dataclass(frozen=True)
class Roles:
    is_staff: bool = False
    is_superuser: bool = False
    teams: Mapping[str, str] = field(default_factory=dict)  # team name -> "admin" | "member"

    @property
    def grants_admin(self) -> bool:
        return self.is_staff or self.is_superuser or bool(self.teams)


def claimed_groups(claims: Mapping, claim: str) -> set[str]:
    value = claims.get(claim)
    if isinstance(value, str):
        return {value}
    if isinstance(value, (list, tuple)):
        return {item for item in value if isinstance(item, str)}
    return set()


def team_role(group: str, prefix: str) -> tuple[str, str] | None:
    """("research", "admin") for "llmproxy:team:research:admin"; None for any other group."""
    if not prefix or not group.startswith(prefix):
        return None
    team, _, role = group[len(prefix) :].rpartition(":")
    if not team or role not in TEAM_ROLES:
        return None
    return team, role


def roles_from_claims(claims: Mapping, mapping: RoleMapping) -> Roles:
    groups = claimed_groups(claims, mapping.groups_claim)
    teams: dict[str, str] = {}
    for group in sorted(groups):
        parsed = team_role(group, mapping.team_prefix)
        if parsed is not None:
            team, role = parsed
            teams[team] = "admin" if "admin" in (role, teams.get(team)) else role
    is_superuser = bool(groups & mapping.superuser_groups)
    is_staff = is_superuser or bool(groups & mapping.staff_groups) or bool(teams)
    return Roles(is_staff=is_staff, is_superuser=is_superuser, teams=teams)
