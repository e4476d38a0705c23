import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from usage.models import EndpointName
from usage.reports import usage_by_key_and_model


class Command(BaseCommand):
    help = "Requests, errors, tokens and cost per key, model and endpoint (from the daily rollup)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="First day to include, YYYY-MM-DD (default: everything).")
        parser.add_argument("--key", help="Only this key (by name).")
        parser.add_argument("--endpoint", choices=EndpointName.values, help="Only this endpoint.")
        parser.add_argument("--json", action="store_true", help="Print a JSON list instead of a table.")

    def handle(self, *args, since: str | None, key: str | None, endpoint: str | None, json: bool, **options) -> None:
        try:
            first_day = date.fromisoformat(since) if since else None
        except ValueError:
            raise CommandError(f"--since expects YYYY-MM-DD, got '{since}'") from None
        rows = usage_by_key_and_model(since=first_day, key_name=key, endpoint=endpoint)
        if json:
            self.stdout.write(dumps(rows))
            return
        header = ("key", "model", "endpoint", "requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd")
        table = [header] + [
            (
                r["key"] or "-",
                r["model"] or "-",
                r["endpoint"],
                r["requests"],
                r["errors"],
                r["prompt_tokens"],
                r["completion_tokens"],
                f"{r['cost_usd']:.6f}",
            )
            for r in rows
        ]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
        if not rows:
            self.stdout.write("(no usage recorded)")


def dumps(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)
