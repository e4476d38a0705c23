from django.core.management.base import BaseCommand, CommandError

from keys.services import DEFAULT_GRACE_HOURS, ApiKeyNotFound, CannotRotate, rotate_api_key


class Command(BaseCommand):
    help = (
        "Give a key a new secret, printed once on stdout; the old secret keeps working for the grace period "
        "(its end is printed on stderr), then stops."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=DEFAULT_GRACE_HOURS,
            help=f"How long the old secret keeps working (default {DEFAULT_GRACE_HOURS}; 0 stops it now).",
        )

    def handle(self, *args, name: str, grace_hours: float, **options) -> None:
        if grace_hours < 0:
            raise CommandError("--grace-hours cannot be negative")
        try:
            rotated = rotate_api_key(name=name, grace_hours=grace_hours)
        except ApiKeyNotFound:
            raise CommandError(f"No API key named '{name}'.") from None
        except CannotRotate as exc:
            raise CommandError(str(exc)) from None
        api_key = rotated.api_key
        self.stdout.write(rotated.plaintext)
        until = api_key.previous_valid_until
        self.stderr.write(
            f"The old key {api_key.previous_prefix}… of '{api_key.name}' works until "
            f"{until:%Y-%m-%d %H:%M:%S %Z}, then stops."
        )
