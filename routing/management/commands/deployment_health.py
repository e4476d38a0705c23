import json
import math
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from routing.health import DeploymentState, HealthUnavailable, read_health
from routing.models import AllowedModel, Deployment, ModelAlias

PER_PROCESS_NOTE = (
    "REDIS_URL is not set: each gateway process keeps its own deployment health, which no other process (this "
    "command included) can read. Only REDIS_URL makes cooldowns shared by every worker and host, and visible here."
)
COLUMNS = ("MODEL", "DEPLOYMENT", "LITELLM MODEL", "PRIORITY", "WEIGHT", "ENABLED", "HEALTH")


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Show every deployment and its health: healthy, or cooling down until when, and its recent failures."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", help="Only this model's deployments (a model name or an alias).")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args, **options) -> None:
        deployments = list(self.deployments(options["model"]))
        problem = None
        try:
            health = read_health(
                [d.pk for d in deployments], redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX
            )
        except HealthUnavailable as exc:
            health, problem = None, str(exc)
        rows = [describe(d, health, shared=bool(settings.REDIS_URL), now=time.time()) for d in deployments]
        if options["json"]:
            note = None if settings.REDIS_URL else PER_PROCESS_NOTE
            report = {"shared": bool(settings.REDIS_URL), "note": note, "error": problem, "deployments": rows}
            self.stdout.write(json.dumps(report, indent=2))
        else:
            if not settings.REDIS_URL:
                self.stdout.write(PER_PROCESS_NOTE)
            self.write_table(rows)
        if problem:
            raise CommandError(f"Deployment health is unknown: {problem}")

    @staticmethod
    def deployments(model_name: str | None):
        found = Deployment.objects.select_related("model").order_by("model__name", "priority", "id")
        if model_name is None:
            return found
        model = AllowedModel.objects.filter(name=model_name).first()
        if model is None:
            alias = ModelAlias.objects.select_related("target").filter(alias=model_name).first()
            model = alias.target if alias else None
        if model is None:
            raise CommandError(f"No allowed model or alias is named '{model_name}'.")
        return found.filter(model=model)

    def write_table(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            self.stdout.write("No deployments.")
            return
        cells = [COLUMNS] + [
            (
                row["model"],
                row["deployment"],
                row["litellm_model"],
                str(row["priority"]),
                str(row["weight"]),
                "yes" if row["enabled"] else "no",
                row["health"],
            )
            for row in rows
        ]
        widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
        for line in cells:
            self.stdout.write("  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]]))


def describe(deployment: Deployment, health: dict[int, DeploymentState] | None, *, shared: bool, now: float) -> dict:
    state = health.get(deployment.pk) if health is not None else None
    row: dict[str, Any] = {
        "id": deployment.pk,
        "model": deployment.model.name,
        "deployment": deployment.label,
        "litellm_model": deployment.effective_litellm_model,
        "priority": deployment.priority,
        "weight": deployment.weight,
        "enabled": deployment.enabled,
        "status": "unknown",
        "cooling_until": None,
        "recent_failures": None,
        "health": "unknown (each process keeps its own)" if not shared else "unknown (Redis did not answer)",
    }
    if state is None:
        return row
    row["recent_failures"] = state.recent_failures
    failures = f"{state.recent_failures} recent failure{'' if state.recent_failures == 1 else 's'}"
    if state.cooling_until is None:
        row["status"] = "healthy"
        row["health"] = "healthy" + (f", {failures}" if state.recent_failures else "")
        return row
    until = datetime.fromtimestamp(state.cooling_until, tz=UTC).isoformat(timespec="seconds")
    row.update(status="cooling_down", cooling_until=until)
    left = max(1, math.ceil(state.cooling_until - now))
    row["health"] = f"cooling down until {until} (in {left} s)" + (f", {failures}" if state.recent_failures else "")
    return row
