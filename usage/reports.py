"""Selectors over the daily rollup: the report command, the dashboard and the key page read these."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum

from usage.models import DailyUsage

TOTALS = {
    "requests": Sum("requests"),
    "errors": Sum("errors"),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "cost_usd": Sum("cost_usd"),
}


def usage_rows(*, since: date | None = None, key_name: str | None = None, model: str | None = None,
               endpoint: str | None = None) -> QuerySet:  # fmt: skip
    rows = DailyUsage.objects.all()
    if endpoint:
        rows = rows.filter(endpoint=endpoint)
    if since:
        rows = rows.filter(day__gte=since)
    if key_name:
        rows = rows.filter(key_name=key_name)
    if model:
        rows = rows.filter(model=model)
    return rows


def _clean(totals: dict[str, Any]) -> dict[str, Any]:
    cleaned = {
        name: int(totals.get(name) or 0) for name in ("requests", "errors", "prompt_tokens", "completion_tokens")
    }
    cleaned["cost_usd"] = float(totals.get("cost_usd") or Decimal(0))
    return cleaned


def usage_by_key_and_model(**filters: Any) -> list[dict[str, Any]]:
    """Totals per key, model and endpoint (chat, embeddings, responses, messages)."""
    grouped = (
        usage_rows(**filters)
        .values("key_name", "model", "endpoint")
        .annotate(**TOTALS)
        .order_by("key_name", "model", "endpoint")
    )
    return [
        {"key": row["key_name"], "model": row["model"], "endpoint": row["endpoint"], **_clean(row)} for row in grouped
    ]


def usage_by_day(*, days: int = 30, today: date, **filters: Any) -> list[dict[str, Any]]:
    since = today - timedelta(days=days - 1)
    grouped = {row["day"]: row for row in usage_rows(since=since, **filters).values("day").annotate(**TOTALS)}
    return [
        {"day": since + timedelta(days=i), **_clean(grouped.get(since + timedelta(days=i), {}))} for i in range(days)
    ]


def key_totals(key_name: str, *, since: date | None = None) -> dict[str, Any]:
    return _clean(usage_rows(since=since, key_name=key_name).aggregate(**TOTALS))


def period_start(period: str, today: date) -> date | None:
    if period == "day":
        return today
    if period == "month":
        return today.replace(day=1)
    return None


def known_filters() -> dict[str, list[str]]:
    keys = DailyUsage.objects.exclude(Q(key_name="")).values_list("key_name", flat=True).distinct().order_by("key_name")
    models = DailyUsage.objects.exclude(Q(model="")).values_list("model", flat=True).distinct().order_by("model")
    endpoints = DailyUsage.objects.values_list("endpoint", flat=True).distinct().order_by("endpoint")
    return {"keys": list(keys), "models": list(models), "endpoints": list(endpoints)}


def recorded_spend(*, key_id: int, since: date | None) -> Decimal:
    """What a key has spent since a day (None: ever), from the daily rollup (what rebuilds a lost budget)."""
    rows = DailyUsage.objects.filter(api_key_id=key_id)
    if since is not None:
        rows = rows.filter(day__gte=since)
    return rows.aggregate(spent=Sum("cost_usd"))["spent"] or Decimal(0)
