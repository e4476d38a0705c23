"""An SSO login's writes: the account (matched on issuer + sub), its flags and team memberships, the audit entry.

Runs on every SSO login, so the admin follows the provider: a group removed there is a role removed here.
Team memberships go through teams.services (the same groups and permissions as a password team admin's);
memberships of teams the claims no longer name are removed. Teams are never created here: a team group naming a
team that does not exist is ignored.
"""

import logging
from collections.abc import Mapping

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.changes import format_change
from sso.models import OidcIdentity
from sso.roles import Roles
from teams.models import Membership, Team
from teams.services import add_team_member, remove_team_member

logger = logging.getLogger(__name__)
USERNAME_MAX_LENGTH = 150


class SignInRefused(Exception):
    """The login is refused; the message is shown on the login page."""


def username_from_claims(claims: Mapping, username_claim: str) -> str:
    for name in (username_claim, "email", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:USERNAME_MAX_LENGTH]
    raise SignInRefused("The provider sent no subject for this login.")


@transaction.atomic
def sync_sso_user(*, issuer: str, claims: Mapping, roles: Roles, username_claim: str):
    """The user this login is for, created or updated to match `roles`; None for a new subject granted nothing
    (no account is made for them). The caller refuses the login unless `roles.grants_admin`."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRefused("The provider sent no subject for this login.")
    identity = OidcIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is None and not roles.grants_admin:
        return None
    users = get_user_model().objects
    username = username_from_claims(claims, username_claim)
    created = identity is None
    if created:
        if users.filter(username=username).exists():
            raise SignInRefused(
                f"An account named '{username}' already exists and was not made by single sign-on; "
                "an administrator must rename or remove it before its owner can log in with single sign-on."
            )
        user = users.create_user(username, email=claims.get("email") or "")  # no usable password
        identity = OidcIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    user = identity.user
    changes = apply_roles(user, claims, roles, username=username)
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["last_login_at"])
    record_login(user, changes, roles=roles, created=created)
    return user


def apply_roles(user, claims: Mapping, roles: Roles, *, username: str) -> list[str]:
    """Set the user's memberships and flags from `roles`; the changes as "Label: old → new" lines."""
    changes = sync_memberships(user, roles.teams)
    wanted = {"is_staff": roles.is_staff, "is_superuser": roles.is_superuser}
    email = claims.get("email")
    if isinstance(email, str) and email:
        wanted["email"] = email
    if username != user.username and not get_user_model().objects.filter(username=username).exists():
        wanted["username"] = username
    user.refresh_from_db(fields=["is_staff"])  # a membership may have set it (teams.services.sync_team_groups)
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    for name in changed:
        label = str(user._meta.get_field(name).verbose_name).capitalize()
        changes.append(format_change(label, getattr(user, name), wanted[name]))
        setattr(user, name, wanted[name])
    if changed:
        user.save(update_fields=changed)
    return changes


def sync_memberships(user, teams: Mapping[str, str]) -> list[str]:
    changes = []
    current = {m.team.name: m for m in Membership.objects.filter(user=user).select_related("team")}
    for name, membership in current.items():
        if name not in teams:
            remove_team_member(team=membership.team, user=user)
            changes.append(format_change(f"Team {name}", membership.role, None))
    found = {team.name: team for team in Team.objects.filter(name__in=list(teams))}
    for name, role in sorted(teams.items()):
        if name not in found:
            logger.warning("single sign-on: %s names team %r, which does not exist; ignored", user.username, name)
            continue
        old = current[name].role if name in current else None
        if old != role:
            add_team_member(team=found[name], user=user, role=role)
            changes.append(format_change(f"Team {name}", old, role))
    return changes


def record_login(user, changes: list[str], *, roles: Roles, created: bool) -> None:
    granted = "no admin role: login refused" if not roles.grants_admin else describe(roles)
    text = f"Logged in with single sign-on ({granted})"
    if changes:
        text += "; " + "; ".join(changes)
    LogEntry.objects.log_actions(user_id=user.pk, queryset=[user], action_flag=ADDITION if created else CHANGE,
                                 change_message=text, single_object=True)  # fmt: skip


def describe(roles: Roles) -> str:
    parts = ["superuser"] if roles.is_superuser else ["staff"] if roles.is_staff else []
    parts += [f"{role} of team {team}" for team, role in sorted(roles.teams.items())]
    return ", ".join(parts)
