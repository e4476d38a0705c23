from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from teams.management.limit_options import add_limit_arguments, describe_limits, limits_from_options
from teams.models import parse_model_list
from teams.services import create_team


class Command(BaseCommand):
    help = "Create a team: the models its keys may use and the limits all its keys share."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--models", default="", help="Comma-separated models/aliases the team's keys may use (default all)."
        )
        add_limit_arguments(parser)

    def handle(self, *args, name: str, models: str, **options) -> None:
        limits = {k: v for k, v in limits_from_options(options, missing=None).items() if v is not None}
        try:
            team = create_team(name=name, models=parse_model_list(models), **limits)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            f"created team: {team.name} (models: {', '.join(team.model_allowlist) or 'all'}; {describe_limits(team)})"
        )
