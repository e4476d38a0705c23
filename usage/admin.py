"""Usage in the admin: the request log, the dashboard, budget alerts, and the spend on a key's and a team's page.

A superuser sees everything; anyone else only the rows of their teams (a row without a team is the platform
admins' only): every list, filter choice, chart, total and figure comes from the user's rows alone. The key and
team pages read their own rows by id (a renamed key keeps its history; another key once of that name is not its).
"""

import logging
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from keys.admin import ApiKeyAdmin
from keys.lookup import KeyRecord
from keys.models import ApiKey
from teams.admin import TeamAdmin, TeamScopedMixin, team_filter, visible_ids, within
from teams.models import Team
from teams.records import TeamRecord
from usage.charts import bar_chart
from usage.limits import enforced_spend
from usage.models import BudgetAlert, DailyUsage, RequestLog
from usage.reports import (
    TOTALS,
    known_filters,
    period_start,
    team_totals,
    top_keys,
    usage_by_day,
    usage_by_key_and_model,
)

logger = logging.getLogger(__name__)

DEFAULT_DAYS, MAX_DAYS, TOP_KEYS, RECENT_ALERTS = 30, 366, 5, 5
FILTERS = ("team", "key", "model", "endpoint")


def dashboard_data(query: QueryDict, *, team_ids: set[int] | None, today: date) -> dict[str, Any]:
    """The dashboard for the user's teams (`team_ids`; None: every row): series per day, the per key/model/endpoint
    table, totals, the filters' choices and what is selected. A filter value outside those teams finds nothing."""
    selected = {name: query.get(name) or "" for name in FILTERS}
    try:
        days = min(MAX_DAYS, max(1, int(query.get("days", DEFAULT_DAYS))))
    except ValueError:
        days = DEFAULT_DAYS
    filters = {"team_ids": team_ids, "team": selected["team"] or None, "key_name": selected["key"] or None,
               "model": selected["model"] or None, "endpoint": selected["endpoint"] or None}  # fmt: skip
    series = usage_by_day(days=days, today=today, **filters)
    since = series[0]["day"]
    return {
        "series": series,
        "since": since,
        "table": usage_by_key_and_model(since=since, **filters),
        "totals": {name: sum(row[name] for row in series) for name in TOTALS},
        "choices": known_filters(team_ids=team_ids),
        "selected": {**selected, "days": days},
    }


def totals_of(rows: QuerySet) -> dict[str, Any]:
    totals = rows.aggregate(**TOTALS)
    cleaned = {name: int(totals[name] or 0) for name in ("requests", "errors", "prompt_tokens", "completion_tokens")}
    cleaned["cost_usd"] = float(totals["cost_usd"] or Decimal(0))
    return cleaned


def budget_spend(record: KeyRecord | TeamRecord, recorded: Decimal) -> tuple[Decimal, str]:
    """The spend enforcement uses; the rollup's figure when the counter store has no bucket or is unreachable."""
    try:
        enforced = enforced_spend(record, timezone.now())
    except Exception as exc:
        logger.warning("could not read the budget counter of %s: %s", record.name, type(exc).__name__)
        enforced = None
    return (recorded, "from the usage log") if enforced is None else (enforced, "as enforced")


def period_label(period: str, start: date | None) -> str:
    return f"This {period if period != 'total' else 'budget'} period{f' (since {start})' if start else ''}"


def key_usage_lines(api_key: ApiKey) -> SafeString:
    """A key's own rows, by id: a renamed key keeps its history, another key once of that name is not counted."""
    rows = DailyUsage.objects.filter(api_key_id=api_key.pk)
    start = period_start(api_key.budget_period, timezone.now().date())
    overall = totals_of(rows)
    period = totals_of(rows.filter(day__gte=start) if start else rows)
    lines = [
        f"All time: {overall['requests']} requests ({overall['errors']} errors), "
        f"{overall['prompt_tokens'] + overall['completion_tokens']} tokens, ${overall['cost_usd']:.4f}",
        f"{period_label(api_key.budget_period, start)}: {period['requests']} requests, ${period['cost_usd']:.4f}",
    ]
    if api_key.max_budget_usd is not None:
        spent, source = budget_spend(KeyRecord.from_model(api_key), Decimal(str(period["cost_usd"])))
        remaining = max(Decimal(0), api_key.max_budget_usd - spent)
        lines.append(f"Remaining budget: ${remaining:.4f} of ${api_key.max_budget_usd} ({source})")
    return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))


def team_usage_html(team: Team) -> SafeString:
    """The team page: spend this budget period, remaining budget, the keys that spent most, recent alerts."""
    start = period_start(team.budget_period, timezone.now().date())
    period = team_totals(team.pk, since=start)
    parts = [format_html(
        "<p>{}: {} requests ({} errors), {} tokens, <strong>${}</strong> spent.</p>",
        period_label(team.budget_period, start), period["requests"], period["errors"],
        period["prompt_tokens"] + period["completion_tokens"], f"{period['cost_usd']:.4f}",
    )]  # fmt: skip
    if team.max_budget_usd is not None:
        spent, source = budget_spend(TeamRecord.from_model(team), Decimal(str(period["cost_usd"])))
        remaining = max(Decimal(0), team.max_budget_usd - spent)
        parts.append(format_html("<p>Remaining budget: <strong>${}</strong> of ${} ({}).</p>",
                                 f"{remaining:.4f}", f"{team.max_budget_usd:.2f}", source))  # fmt: skip
    else:
        parts.append(format_html("<p>{}</p>", "No team budget: only the keys' own budgets apply."))
    parts.append(top_keys_html(top_keys(team.pk, since=start, limit=TOP_KEYS)))
    parts.append(alerts_html(team))
    return mark_safe("".join(parts))  # each part built by format_html


def top_keys_html(top: list[dict[str, Any]]) -> SafeString:
    if not top:
        return format_html("<p>{}</p>", "No key has been used this period.")
    body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>${}</td></tr>", (
        (row["key"] or "-", row["requests"], row["prompt_tokens"] + row["completion_tokens"], f"{row['cost_usd']:.4f}")
        for row in top
    ))  # fmt: skip
    return format_html(
        '<h3>Top keys this period</h3><table class="team-top-keys"><thead><tr><th>Key</th><th>Requests</th>'
        "<th>Tokens</th><th>Cost</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def alerts_html(team: Team) -> SafeString:
    alerts = BudgetAlert.objects.filter(team_id=team.pk).order_by("-created_at")[:RECENT_ALERTS]
    if not alerts:
        return format_html("<p>{}</p>", "No budget alert sent.")
    items = format_html_join("", "<li>{} {}: {}% of ${} reached (${} spent), {}</li>", (
        (alert.subject, alert.name, alert.percent, f"{alert.budget_usd:.2f}", f"{alert.spent_usd:.4f}",
         alert.period) for alert in alerts
    ))  # fmt: skip
    return format_html("<h3>Budget alerts</h3><ul>{}</ul>", items)


class TeamScopedAdmin(TeamScopedMixin, admin.ModelAdmin):
    """Read-only rows, each of one team (recorded when the row was written): a user sees their teams' rows."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return within(super().get_queryset(request), visible_ids(request))

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        team_ids = visible_ids(request)
        in_scope = obj is None or team_ids is None or obj.team_id in team_ids
        return super().has_view_permission(request, obj) and in_scope

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        team_ids = visible_ids(request)  # the log is pruned by command; a superuser may still delete a row
        return team_ids is None and super().has_delete_permission(request, obj)


ROUTE_FIELDS = ("requested_model", "resolved_model", "litellm_model", "deployment", "attempts", "fallback_model",
                "streamed")  # fmt: skip
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
                "usage_estimated", "cost_usd", "latency_ms", "ttft_ms")  # fmt: skip


@admin.register(RequestLog)
class RequestLogAdmin(TeamScopedAdmin):
    # The columns an operator reads, compact enough to fit the page; the rest is on each row's page.
    list_display = ("created_at", "caller", "model_display", "deployment", "status", "end_reason", "tokens", "cost",
                    "latency", "attempts")  # fmt: skip
    list_filter = (team_filter(), "endpoint", "end_reason", "streamed", "status", "usage_estimated", "resolved_model",
                   "attempts", "admin_test", "created_at")  # fmt: skip
    fieldsets = (
        (None, {"fields": ("created_at", "request_id", "endpoint", "status", "end_reason", "error_code")}),
        ("Caller", {"fields": ("team", "team_name", "api_key", "key_name", "admin_test")}),
        ("Route", {"fields": ROUTE_FIELDS}),
        ("Usage", {"fields": USAGE_FIELDS}),
    )
    search_fields = ("request_id", "key_name", "team_name", "requested_model", "resolved_model", "deployment",
                     "fallback_model", "error_code")  # fmt: skip
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False  # COUNT(*) over a large log is slow; the dashboard reads the rollup

    @admin.display(description="team / key", ordering="key_name")
    def caller(self, row: RequestLog) -> str:
        return " / ".join(name for name in (row.team_name, row.key_name) if name) or "-"

    @admin.display(description="model", ordering="resolved_model")
    def model_display(self, row: RequestLog) -> str:
        asked, served = row.requested_model, row.resolved_model
        shown = asked if not served or served == asked else f"{asked} → {served}"
        return f"{shown} (fallback {row.fallback_model})" if row.fallback_model else shown or "-"

    @admin.display(description="tokens", ordering="total_tokens")
    def tokens(self, row: RequestLog) -> str:
        estimated = " est." if row.usage_estimated else ""
        return f"{row.prompt_tokens} + {row.completion_tokens}{estimated}"

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, row: RequestLog) -> str:
        return "-" if row.cost_usd is None else f"${row.cost_usd:.6f}"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, row: RequestLog) -> str:
        first_byte = f" (first byte {row.ttft_ms:.0f})" if row.streamed and row.ttft_ms is not None else ""
        return f"{row.latency_ms:.0f} ms{first_byte}"


@admin.register(BudgetAlert)
class BudgetAlertAdmin(TeamScopedAdmin):
    """Budget alerts sent (a key's alert carries the key's team): who crossed which share of which budget."""

    list_display = ("created_at", "subject", "name", "period", "percent", "spent_usd", "budget_usd", "sent_at")
    list_filter = (team_filter(), "subject", "created_at")
    search_fields = ("name", "period")
    date_hierarchy = "created_at"
    fields = ("created_at", "subject", "team", "api_key", "name", "period", "percent", "spent_usd", "budget_usd",
              "sent_at")  # recipients (email addresses) stay out of the admin  # fmt: skip


@admin.register(DailyUsage)
class UsageDashboardAdmin(TeamScopedAdmin):
    """The usage dashboard: charts per day from the rollup, filterable by team, key, model and endpoint."""

    def changelist_view(self, request: HttpRequest, extra_context=None) -> TemplateResponse:
        if not self.has_view_or_change_permission(request):  # a custom view: Django's own check never runs
            raise PermissionDenied
        data = dashboard_data(request.GET, team_ids=visible_ids(request), today=timezone.now().date())
        series = data["series"]
        labels = [row["day"].strftime("%m-%d") for row in series]
        charts = [
            bar_chart(labels, [row["requests"] for row in series], title="Requests per day"),
            bar_chart(
                labels,
                [row["prompt_tokens"] + row["completion_tokens"] for row in series],
                title="Tokens per day (prompt + completion)",
                color="#79aec8",
            ),
            bar_chart(labels, [row["cost_usd"] for row in series], title="Cost per day (USD)", color="#b5651d"),
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage dashboard",
            "opts": self.opts,
            "charts": [mark_safe(chart) for chart in charts],  # built from escaped values only
            "table": data["table"],
            "filters": data["choices"],
            "selected": data["selected"],
            "since": data["since"],
            "totals": data["totals"],
        }
        return TemplateResponse(request, "admin/usage/dashboard.html", context)


class ApiKeyWithUsageAdmin(ApiKeyAdmin):
    """The key page, with this key's usage and remaining budget (usage depends on keys, not the reverse)."""

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or not request.user.has_perm("usage.view_dailyusage"):  # spend is the dashboard's to show
            return fields
        return (*fields, "usage_summary")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "usage_summary")

    @admin.display(description="usage")
    def usage_summary(self, obj: ApiKey) -> str:
        return key_usage_lines(obj)


class TeamWithUsageAdmin(TeamAdmin):
    """The team page, with the team's spend this period, remaining budget, top keys and budget alerts."""

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None or not request.user.has_perm("usage.view_dailyusage"):
            return fieldsets
        return [*fieldsets, ("Usage", {"fields": ("usage_summary",)})]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "usage_summary")

    @admin.display(description="usage")
    def usage_summary(self, obj: Team) -> str:
        return team_usage_html(obj)


admin.site.unregister(ApiKey)
admin.site.register(ApiKey, ApiKeyWithUsageAdmin)
admin.site.unregister(Team)
admin.site.register(Team, TeamWithUsageAdmin)
