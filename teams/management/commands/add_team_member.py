from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from teams.groups import TEAM_ADMINS, TEAM_MEMBERS
from teams.models import Role
from teams.services import TeamNotFound, add_team_member, get_team


class Command(BaseCommand):
    help = (
        "Add an existing user to a team: 'admin' manages the team's keys in /admin/, 'member' reads its usage. "
        "Run again with another --role to change the role."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("team")
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, required=True)

    def handle(self, *args, team: str, username: str, role: str, **options) -> None:
        try:
            team_obj = get_team(team)
        except TeamNotFound:
            raise CommandError(f"No team named '{team}'.") from None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}': create the user first (/admin/ → Users → Add user).")
        before = team_obj.memberships.filter(user=user).values_list("role", flat=True).first()
        add_team_member(team=team_obj, user=user, role=role)
        group = TEAM_ADMINS if role == Role.ADMIN else TEAM_MEMBERS
        if before is None:
            what = f"added {username} to team {team_obj.name} as {role}"
        elif before != role:
            what = f"changed {username}'s role in team {team_obj.name} from {before} to {role}"
        else:
            what = f"{username} already is {role} of team {team_obj.name}"
        self.stdout.write(f"{what} (staff, group '{group}': may log into /admin/)")
