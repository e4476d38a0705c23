from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from keys.management.commands._limits import add_limit_arguments, limits_from_options
from keys.services import UNCHANGED, ApiKeyNotFound, set_api_key_limits


class Command(BaseCommand):
    help = "Change a key's limits (--rpm, --tpm, --max-budget, --budget-period); 'none' removes a limit."
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
        budget = "-" if api_key.max_budget_usd is None else api_key.max_budget_usd
        self.stdout.write(
            f"{api_key.name}: rpm={api_key.rpm_limit or '-'} tpm={api_key.tpm_limit or '-'} "
            f"budget={budget} per {api_key.budget_period}"
        )
