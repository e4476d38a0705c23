"""Selectors over the daily rollup: the report command, the dashboard, the key and team pages read these.

A row names its key by id: a key is shown (and filtered) by its current name, so a renamed key keeps its history;
rows of a deleted key keep the name they were written with. Teams likewise.
"""

from collections.abc import Collection
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from usage.models import DailyUsage

TOTALS = {
    "requests": Sum("requests"),
    "errors": Sum("errors"),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "cost_usd": Sum("cost_usd"),
}
KEY_LABEL = Coalesce(F("api_key__name"), F("key_name"))
TEAM_LABEL = Coalesce(F("team__name"), F("team_name"))


def usage_rows(*, since: date | None = None, key_name: str | None = None, model: str | None = None,
               endpoint: str | None = None, team: str | None = None,
               team_ids: Collection[int] | None = None) -> QuerySet:  # fmt: skip
    """`team` filters by a team's name; `team_ids` restricts to those teams (None: every row; a team admin's view
    passes the teams they may see)."""
    rows = DailyUsage.objects.all()
    if team_ids is not None:
        rows = rows.filter(team_id__in=team_ids)
    if endpoint:
        rows = rows.filter(endpoint=endpoint)
    if since:
        rows = rows.filter(day__gte=since)
    if key_name:
        rows = rows.filter(Q(api_key__name=key_name) | Q(api_key__isnull=True, key_name=key_name))
    if team:
        rows = rows.filter(Q(team__name=team) | Q(team__isnull=True, team_name=team))
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
    """Totals per key, its team, model and endpoint (chat, embeddings, responses, messages)."""
    grouped = (
        usage_rows(**filters)
        .values(key=KEY_LABEL, team_label=TEAM_LABEL, model_name=F("model"), endpoint_name=F("endpoint"))
        .annotate(**TOTALS)
        .order_by("key", "team_label", "model_name", "endpoint_name")
    )
    return [
        {"key": row["key"], "team": row["team_label"], "model": row["model_name"], "endpoint": row["endpoint_name"],
         **_clean(row)}
        for row in grouped
    ]  # fmt: skip


def usage_by_team(**filters: Any) -> list[dict[str, Any]]:
    """Totals per team ("" for keys without a team)."""
    grouped = usage_rows(**filters).values(team_label=TEAM_LABEL).annotate(**TOTALS).order_by("team_label")
    return [{"team": row["team_label"], **_clean(row)} for row in grouped]


def usage_by_day(*, days: int = 30, today: date, **filters: Any) -> list[dict[str, Any]]:
    since = today - timedelta(days=days - 1)
    grouped = {row["day"]: row for row in usage_rows(since=since, **filters).values("day").annotate(**TOTALS)}
    return [
        {"day": since + timedelta(days=i), **_clean(grouped.get(since + timedelta(days=i), {}))} for i in range(days)
    ]


def key_totals(key_name: str, *, since: date | None = None) -> dict[str, Any]:
    return _clean(usage_rows(since=since, key_name=key_name).aggregate(**TOTALS))


def team_totals(team_id: int, *, since: date | None = None) -> dict[str, Any]:
    return _clean(usage_rows(since=since, team_ids=[team_id]).aggregate(**TOTALS))


def top_keys(team_id: int, *, since: date | None = None, limit: int = 5) -> list[dict[str, Any]]:
    """A team's keys that spent most (then made most requests) since a day."""
    grouped = (
        usage_rows(since=since, team_ids=[team_id])
        .values(key=KEY_LABEL)
        .annotate(**TOTALS)
        .order_by("-cost_usd", "-requests", "key")[:limit]
    )
    return [{"key": row["key"], **_clean(row)} for row in grouped]


def period_start(period: str, today: date) -> date | None:
    if period == "day":
        return today
    if period == "month":
        return today.replace(day=1)
    return None


def _distinct(rows: QuerySet, label: Any) -> list[str]:
    names = rows.annotate(label=label).values_list("label", flat=True).distinct().order_by("label")
    return [name for name in names if name]


def known_filters(*, team_ids: Collection[int] | None = None) -> dict[str, list[str]]:
    rows = usage_rows(team_ids=team_ids)
    return {
        "keys": _distinct(rows, KEY_LABEL),
        "models": _distinct(rows, F("model")),
        "endpoints": _distinct(rows, F("endpoint")),
        "teams": _distinct(rows, TEAM_LABEL),
    }


def recorded_spend(*, since: date | None, key_id: int | None = None, team_id: int | None = None) -> Decimal:
    """What a key (or every key of a team, while in it) has spent since a day (None: ever), from the daily rollup
    (what rebuilds a lost budget)."""
    owner = {"team_id": team_id} if team_id is not None else {"api_key_id": key_id}
    rows = DailyUsage.objects.filter(**owner)
    if since is not None:
        rows = rows.filter(day__gte=since)
    return rows.aggregate(spent=Sum("cost_usd"))["spent"] or Decimal(0)
