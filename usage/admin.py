import logging
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from keys.admin import ApiKeyAdmin
from keys.lookup import KeyRecord
from keys.models import ApiKey
from usage.charts import bar_chart
from usage.limits import enforced_spend
from usage.models import DailyUsage, RequestLog
from usage.reports import key_totals, known_filters, period_start, usage_by_day, usage_by_key_and_model

logger = logging.getLogger(__name__)


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "endpoint", "key_name", "requested_model", "resolved_model", "deployment",
                    "attempts", "streamed", "status", "end_reason", "total_tokens", "cost_usd", "latency_ms",
                    "ttft_ms")  # fmt: skip
    list_filter = ("endpoint", "end_reason", "streamed", "status", "usage_estimated", "resolved_model", "attempts",
                   "created_at")  # fmt: skip
    search_fields = ("key_name", "requested_model", "resolved_model", "deployment", "fallback_model", "error_code")
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False  # COUNT(*) over a large log is slow; the dashboard reads the rollup

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(DailyUsage)
class UsageDashboardAdmin(admin.ModelAdmin):
    """The usage dashboard: charts per day from the rollup, filterable by key, model and endpoint."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None) -> TemplateResponse:
        if not self.has_view_or_change_permission(request):  # a custom view: Django's own check never runs
            raise PermissionDenied
        key_name = request.GET.get("key") or None
        model = request.GET.get("model") or None
        endpoint = request.GET.get("endpoint") or None
        try:
            days = min(366, max(1, int(request.GET.get("days", 30))))
        except ValueError:
            days = 30
        today = timezone.now().date()
        series = usage_by_day(days=days, today=today, key_name=key_name, model=model, endpoint=endpoint)
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
        since = series[0]["day"]
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage dashboard",
            "opts": self.opts,
            "charts": [mark_safe(chart) for chart in charts],  # built from escaped values only
            "table": usage_by_key_and_model(since=since, key_name=key_name, model=model, endpoint=endpoint),
            "filters": known_filters(),
            "selected": {"key": key_name or "", "model": model or "", "endpoint": endpoint or "", "days": days},
            "since": since,
            "totals": {
                name: sum(row[name] for row in series)
                for name in ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd")
            },
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
        today = timezone.now().date()
        start = period_start(obj.budget_period, today)
        period = key_totals(obj.name, since=start)
        overall = key_totals(obj.name)
        lines = [
            f"All time: {overall['requests']} requests ({overall['errors']} errors), "
            f"{overall['prompt_tokens'] + overall['completion_tokens']} tokens, ${overall['cost_usd']:.4f}",
            f"This {obj.budget_period if obj.budget_period != 'total' else 'budget'} period"
            f"{f' (since {start})' if start else ''}: {period['requests']} requests, ${period['cost_usd']:.4f}",
        ]
        if obj.max_budget_usd is not None:
            spent, source = Decimal(str(period["cost_usd"])), "from the usage log"
            try:  # the figure enforcement uses; the rollup when the counter store has no bucket or is unreachable
                enforced = enforced_spend(KeyRecord.from_model(obj), timezone.now())
            except Exception as exc:
                logger.warning("could not read the budget counter of key %s: %s", obj.name, type(exc).__name__)
                enforced = None
            if enforced is not None:
                spent, source = enforced, "as enforced"
            remaining = max(Decimal(0), obj.max_budget_usd - spent)
            lines.append(f"Remaining budget: ${remaining:.4f} of ${obj.max_budget_usd} ({source})")
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))


admin.site.unregister(ApiKey)
admin.site.register(ApiKey, ApiKeyWithUsageAdmin)
