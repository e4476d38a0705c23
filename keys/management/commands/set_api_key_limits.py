from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from keys.management.commands._limits import add_limit_arguments, describe_limits, limits_from_options
from keys.services import UNCHANGED, ApiKeyNotFound, set_api_key_limits


class Command(BaseCommand):
    help = (
        "Change a key's limits (--rpm, --tpm, --max-budget, --budget-period, --alert-percent); 'none' removes a limit."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        add_limit_arguments(parser)

    def handle(self, *args, name: str, **options) -> None:
        try:
            api_key = set_api_key_limits(name=name, **limits_from_options(options, missing=UNCHANGED))
        except ApiKeyNotFound:
            raise CommandError(f"No API key named '{name}'.") from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"{api_key.name}: {describe_limits(api_key)}")
