"""Teams in the admin, and the one way every admin page narrows its rows to the user's teams.

Platform admins (superusers) create and edit teams and their memberships. A team's admins and members read their
own teams' pages; the page's spend, remaining budget and top keys come from the usage app (usage/admin.py extends
this admin: teams never imports usage).
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.changes import AuditedAdminMixin
from teams.access import administered_team_ids, visible_team_ids
from teams.models import Membership, Team

NO_TEAM = "none"


def administered_ids(request: HttpRequest) -> set[int] | None:
    """The teams the request's user administers (None: a superuser, every team), read once per request."""
    if not hasattr(request, "_llmproxy_administered_teams"):
        request._llmproxy_administered_teams = administered_team_ids(request.user)
    return request._llmproxy_administered_teams


def visible_ids(request: HttpRequest) -> set[int] | None:
    """The teams the request's user administers or belongs to (None: a superuser), read once per request."""
    if not hasattr(request, "_llmproxy_visible_teams"):
        request._llmproxy_visible_teams = visible_team_ids(request.user)
    return request._llmproxy_visible_teams


def within(queryset: QuerySet, team_ids: set[int] | None, field: str = "team") -> QuerySet:
    """Rows of the given teams only; a row without a team is a superuser's only (team_ids None)."""
    return queryset if team_ids is None else queryset.filter(**{f"{field}__in": team_ids})


def team_filter(field: str = "team", *, administered_only: bool = False) -> type[admin.SimpleListFilter]:
    """A list filter by team whose choices are the user's teams only (Django's related filter lists them all)."""

    class TeamFilter(admin.SimpleListFilter):
        title = "team"
        parameter_name = "team"

        def lookups(self, request, model_admin):
            team_ids = administered_ids(request) if administered_only else visible_ids(request)
            choices = [(str(pk), name) for pk, name in within(Team.objects.all(), team_ids, "pk")
                       .values_list("pk", "name")]  # fmt: skip
            if team_ids is None:
                choices.append((NO_TEAM, "(no team)"))
            return choices

        def queryset(self, request, queryset: QuerySet) -> QuerySet:
            value = self.value()
            if not value:
                return queryset
            if value == NO_TEAM:
                return queryset.filter(**{f"{field}__isnull": True})
            if not value.isdigit():
                return queryset.none()
            return queryset.filter(**{field: int(value)})  # on top of get_queryset: another team's id finds nothing

    return TeamFilter


class TeamScopedMixin:
    """For a ModelAdmin whose get_queryset narrows rows to the user's teams."""

    def history_view(self, request: HttpRequest, object_id: str, extra_context=None):
        """Like the other pages: a user without the permission gets a 403 (Django looks the object up first, and
        an object outside the user's rows would answer "does not exist" instead)."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)


class MembershipInline(admin.TabularInline):
    """Who belongs to the team (superusers only: team admins and members hold no membership permission)."""

    model = Membership
    extra = 0
    fields = ("user", "role")
    autocomplete_fields = ("user",)


@admin.register(Team)
class TeamAdmin(TeamScopedMixin, AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "allowed_models_display", "rpm_limit", "tpm_limit", "budget_display", "alert_percent")
    search_fields = ("name",)
    inlines = (MembershipInline,)
    fieldsets = (
        (None, {"fields": ("name", "allowed_models")}),
        ("Limits (all the team's keys together)",
         {"fields": ("rpm_limit", "tpm_limit", "max_budget_usd", "budget_period", "alert_percent")}),
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return within(super().get_queryset(request), visible_ids(request), "pk")

    def has_view_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return super().has_view_permission(request, obj) and self.in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return super().has_change_permission(request, obj) and self.in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Team | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self.in_scope(request, obj)

    @staticmethod
    def in_scope(request: HttpRequest, obj: Team | None) -> bool:
        team_ids = visible_ids(request)
        return obj is None or team_ids is None or obj.pk in team_ids

    @admin.display(description="allowed models")
    def allowed_models_display(self, obj: Team) -> str:
        return ", ".join(obj.model_allowlist) or "all"

    @admin.display(description="budget", ordering="max_budget_usd")
    def budget_display(self, obj: Team) -> str:
        if obj.max_budget_usd is None:
            return "-"
        return f"${obj.max_budget_usd.normalize():f} per {obj.budget_period}"
