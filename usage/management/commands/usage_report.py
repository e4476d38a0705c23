import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from usage.models import EndpointName
from usage.reports import usage_by_key_and_model, usage_by_team

COUNTS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd")


class Command(BaseCommand):
    help = "Requests, errors, tokens and cost per key, team, model and endpoint, or per team (from the daily rollup)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="First day to include, YYYY-MM-DD (default: everything).")
        parser.add_argument("--key", help="Only this key (by its current name).")
        parser.add_argument("--team", help="Only the keys of this team (by name).")
        parser.add_argument("--endpoint", choices=EndpointName.values, help="Only this endpoint.")
        parser.add_argument(
            "--by",
            choices=("key", "team"),
            default="key",
            help="key: a row per key, model and endpoint; team: per team.",
        )
        parser.add_argument("--json", action="store_true", help="Print a JSON list instead of a table.")

    def handle(self, *args, since: str | None, key: str | None, team: str | None, endpoint: str | None, by: str,
               json: bool, **options) -> None:  # fmt: skip
        try:
            first_day = date.fromisoformat(since) if since else None
        except ValueError:
            raise CommandError(f"--since expects YYYY-MM-DD, got '{since}'") from None
        filters = {"since": first_day, "key_name": key, "team": team, "endpoint": endpoint}
        if by == "team":
            rows = usage_by_team(**filters)
            header: tuple[str, ...] = ("team", *COUNTS)
        else:
            rows = usage_by_key_and_model(**filters)
            header = ("key", "team", "model", "endpoint", *COUNTS)
        if json:
            self.stdout.write(dumps(rows))
            return
        table = [header] + [tuple(cell(row, name) for name in header) for row in rows]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)))
        if not rows:
            self.stdout.write("(no usage recorded)")


def cell(row: dict, name: str) -> str | int:
    if name == "cost_usd":
        return f"{row['cost_usd']:.6f}"
    return row[name] if name in COUNTS or name == "endpoint" else (row[name] or "-")


def dumps(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)
