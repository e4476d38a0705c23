from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.policy_apply import preview_policy
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
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print what the import would add, change and remove (field by field), and change nothing.",
        )

    def handle(self, *args, file: Path, prune: bool, dry_run: bool, **options) -> None:
        if not file.exists():
            raise CommandError(f"{file}: no such file")
        if file.suffix.lower() not in {".yaml", ".yml", ".json"}:
            raise CommandError(f"{file}: expected a .yaml, .yml or .json file")
        try:
            data = read_policy_file(file)
            if dry_run:
                self.print_preview(data, prune=prune)
                return
            result = import_policy(data, prune=prune)
        except PolicyFileError as exc:
            raise CommandError(str(exc)) from exc
        for label, names in (("created", result.created), ("updated", result.updated), ("deleted", result.deleted)):
            for name in names:
                self.stdout.write(f"{label}: {name}")
        self.stdout.write(
            f"{len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged, {len(result.deleted)} deleted"
        )

    def print_preview(self, data: dict, *, prune: bool) -> None:
        preview = preview_policy(data, prune=prune)
        for line in preview.diff.lines():
            self.stdout.write(line)
        if preview.error is not None:
            raise CommandError(f"{preview.error} (dry run: nothing was changed)")
        self.stdout.write(f"dry run: {preview.diff.summary()}; nothing was changed")
