from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.policy_io import PolicyFileError, import_policy, read_policy_file


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Upsert allowed models, aliases and teams from a YAML or JSON policy file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also delete models, aliases and teams the file does not name (teams: if it has a teams section).",
        )

    def handle(self, *args, file: Path, prune: bool, **options) -> None:
        if not file.exists():
            raise CommandError(f"{file}: no such file")
        if file.suffix.lower() not in {".yaml", ".yml", ".json"}:
            raise CommandError(f"{file}: expected a .yaml, .yml or .json file")
        try:
            result = import_policy(read_policy_file(file), prune=prune)
        except PolicyFileError as exc:
            raise CommandError(str(exc)) from exc
        for label, names in (("created", result.created), ("updated", result.updated), ("deleted", result.deleted)):
            for name in names:
                self.stdout.write(f"{label}: {name}")
        self.stdout.write(
            f"{len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged, {len(result.deleted)} deleted"
        )
