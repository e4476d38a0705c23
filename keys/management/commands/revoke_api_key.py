from django.core.management.base import BaseCommand, CommandError

from keys.services import ApiKeyNotFound, revoke_api_key


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Revoke an API key by name; it stops working on every worker within a second."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")

    def handle(self, *args, name: str, **options) -> None:
        try:
            revoke_api_key(name=name)
        except ApiKeyNotFound:
            raise CommandError(f"No API key named '{name}'.") from None
        self.stdout.write(f"revoked: {name}")
