from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from keys.management.commands._limits import add_limit_arguments, limits_from_options
from keys.models import parse_model_list
from keys.services import create_api_key
from teams.services import TeamNotFound, get_team


class Command(BaseCommand):
    help = "Create an API key and print it once (only its hash is stored)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--models", default="", help="Comma-separated models/aliases this key may use (default all)."
        )
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--team", default=None, help="The team the key belongs to (its models and limits apply).")
        add_limit_arguments(parser)

    def handle(self, *args, name: str, models: str, expires_in_days: int | None, team: str | None, **options) -> None:
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        limits = {k: v for k, v in limits_from_options(options, missing=None).items() if v is not None}
        try:
            owner = get_team(team) if team is not None else None
        except TeamNotFound:
            raise CommandError(f"No team named '{team}'.") from None
        try:
            created = create_api_key(
                name=name, models=parse_model_list(models), expires_in_days=expires_in_days, team=owner, **limits
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(created.plaintext)
