"""API keys in the admin. A superuser manages every key; anyone else only the keys of the teams they administer
(a key without a team is the platform admins' only): the list, every page, the team choice and the actions."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.timezone import localtime

from audit.changes import AuditedAdminMixin
from keys.models import ApiKey
from keys.services import (
    DEFAULT_GRACE_HOURS,
    ApiKeyNotFound,
    CannotRotate,
    CreatedKey,
    create_api_key,
    rotate_api_key,
)
from teams.admin import TeamScopedMixin, administered_ids, team_filter, within
from teams.models import Team

LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_budget_usd", "budget_period", "alert_percent")
MAX_GRACE_HOURS = 24 * 30


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        return queryset


def grace_hours_from(request: HttpRequest) -> float | None:
    try:
        hours = float(request.POST.get("grace_hours", DEFAULT_GRACE_HOURS))
    except ValueError:
        return None
    return hours if 0 <= hours <= MAX_GRACE_HOURS else None


@admin.register(ApiKey)
class ApiKeyAdmin(TeamScopedMixin, AuditedAdminMixin, admin.ModelAdmin):
    audit_redacted_fields = ("key_hash",)  # not a form field today; never in the audit trail if it becomes one
    list_display = (
        "name",
        "prefix_display",
        "team",
        "status",
        "allowed_models_display",
        "created_at",
        "expires_at",
        "last_used_at",
    )
    list_filter = (StatusFilter, team_filter(administered_only=True), "created_at", "expires_at", "last_used_at")
    list_select_related = ("team",)
    search_fields = ("name", "prefix", "allowed_models")
    readonly_fields = ("prefix_display", "status", "created_at", "revoked_at", "last_used_at", "created_by",
                       "rotation")  # fmt: skip
    actions = ("revoke_selected", "rotate_selected")
    ordering = ("name",)
    change_form_template = "admin/keys/apikey/change_form.html"

    # Scope: the keys of the teams the user administers.

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return within(super().get_queryset(request), administered_ids(request))

    def in_scope(self, request: HttpRequest, obj: ApiKey | None) -> bool:
        team_ids = administered_ids(request)
        return obj is None or team_ids is None or obj.team_id in team_ids

    def has_view_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return super().has_view_permission(request, obj) and self.in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return super().has_change_permission(request, obj) and self.in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self.in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        team_ids = administered_ids(request)  # someone with no team to put a key in cannot add one
        return super().has_add_permission(request) and (team_ids is None or bool(team_ids))

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "team":
            team_ids = administered_ids(request)
            kwargs["queryset"] = within(Team.objects.all(), team_ids, "pk")
            if team_ids is not None:  # a team admin's key always belongs to one of their teams
                kwargs["required"] = True
                if len(team_ids) == 1:
                    kwargs["initial"] = next(iter(team_ids))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Pages

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "team", "allowed_models", "expires_at", *LIMIT_FIELDS)
        return (
            "name",
            "prefix_display",
            "team",
            "status",
            "allowed_models",
            "expires_at",
            "created_at",
            "created_by",
            "rotation",
            "revoked_at",
            "last_used_at",
            *LIMIT_FIELDS,
        )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "budget_period" in form.base_fields:  # a post without it (a script, an older form) keeps the default
            form.base_fields["budget_period"].required = False
        return form

    def get_fieldsets(self, request, obj=None):
        """The limits in their own fieldset; every other field (a subclass may add some) in the first."""
        fields = self.get_fields(request, obj)
        return [
            (None, {"fields": [name for name in fields if name not in LIMIT_FIELDS]}),
            (
                "Limits",
                {
                    "fields": [name for name in fields if name in LIMIT_FIELDS],
                    "description": "A key in a team gets at most the team's own limits; both apply.",
                },
            ),
        ]

    @admin.display(description="key prefix", ordering="prefix")
    def prefix_display(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…" if obj.prefix else "-"

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    @admin.display(description="allowed models")
    def allowed_models_display(self, obj: ApiKey) -> str:
        return ", ".join(obj.model_allowlist) or "all"

    @admin.display(description="rotation")
    def rotation(self, obj: ApiKey) -> str:
        if obj.rotated_at is None:
            return "never rotated"
        rotated = f"rotated {localtime(obj.rotated_at):%Y-%m-%d %H:%M:%S %Z}"
        until = obj.previous_valid_until
        if until is None:
            return rotated
        verb = "works" if until > timezone.now() else "stopped working"
        return f"{rotated}; the previous key {obj.previous_prefix}… {verb} until {localtime(until):%Y-%m-%d %H:%M %Z}"

    # Writes

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = create_api_key(
            name=obj.name,
            models=obj.model_allowlist,
            expires_at=obj.expires_at,
            rpm_limit=obj.rpm_limit,
            tpm_limit=obj.tpm_limit,
            max_budget_usd=obj.max_budget_usd,
            budget_period=obj.budget_period,
            team=obj.team,
            created_by=request.user,
            alert_percent=obj.alert_percent,
        )
        saved = created.api_key
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = saved.pk, saved.prefix, saved.key_hash, saved.created_at
        obj.created_by = saved.created_by
        obj._state.adding = False
        obj._state.db = saved._state.db
        request._llmproxy_new_keys = [created]

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None) -> HttpResponse:
        created = getattr(request, "_llmproxy_new_keys", None)
        if not created:
            return super().response_add(request, obj, post_url_continue)
        return self.show_once(request, created, title=f"API key '{obj.name}' created")

    def show_once(self, request: HttpRequest, created: list[CreatedKey], *, title: str) -> TemplateResponse:
        """The new secrets, on a page no cache keeps: the gateway stores only their hashes."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "created": created,
        }
        response = TemplateResponse(request, "admin/keys/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys", permissions=["change"])  # not for view-only users
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])  # save(), not update(): the signal invalidates caches
            self.log_changed_values(
                request, api_key, [("Revoked at", None, api_key.revoked_at)], via="action “Revoke selected API keys”"
            )
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)

    @admin.action(description="Rotate selected API keys (new secret, the old one works for a grace period)",
                  permissions=["change"])  # fmt: skip
    def rotate_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        keys = list(queryset)  # the changelist's queryset: only keys this user may see
        if request.POST.get("post") != "yes":
            return self.confirm_rotation(request, keys, action="rotate_selected")
        return self.rotate(request, keys, via="action “Rotate selected API keys”")

    def confirm_rotation(self, request: HttpRequest, keys: list[ApiKey], *, action: str | None) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate API keys",
            "opts": self.opts,
            "keys": keys,
            "action": action,
            "grace_hours": DEFAULT_GRACE_HOURS,
            "max_grace_hours": MAX_GRACE_HOURS,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/keys/apikey/rotate.html", context)

    def rotate(self, request: HttpRequest, keys: list[ApiKey], *, via: str) -> HttpResponse | None:
        grace_hours = grace_hours_from(request)
        if grace_hours is None:
            self.message_user(request, f"The grace period must be 0 to {MAX_GRACE_HOURS} hours.", messages.ERROR)
            return None
        created = []
        for api_key in keys:
            old_prefix = api_key.prefix
            try:
                new = rotate_api_key(name=api_key.name, grace_hours=grace_hours)
            except CannotRotate as exc:
                self.message_user(request, str(exc), messages.WARNING)
                continue
            except ApiKeyNotFound:  # renamed or deleted since the page was shown
                self.message_user(request, f"The API key '{api_key.name}' is gone: nothing rotated.", messages.WARNING)
                continue
            self.log_changed_values(
                request,
                new.api_key,
                [("Key prefix", old_prefix, new.api_key.prefix),
                 ("Previous key valid until", None, new.api_key.previous_valid_until)],
                via=via,
            )  # fmt: skip
            created.append(new)
        if not created:
            return None
        names = ", ".join(f"'{item.api_key.name}'" for item in created)
        return self.show_once(request, created, title=f"API key{'s' if len(created) > 1 else ''} {names} rotated")

    def get_urls(self):
        rotate = path("<path:object_id>/rotate/", self.admin_site.admin_view(self.rotate_view),
                      name=f"{self.opts.app_label}_{self.opts.model_name}_rotate")  # fmt: skip
        return [rotate, *super().get_urls()]

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The key page's "Rotate" button: a confirmation (GET), then the new key shown once (POST)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        if request.method == "POST":
            response = self.rotate(request, [obj], via="the key page's “Rotate” button")
            if response is not None:
                return response
        return self.confirm_rotation(request, [obj], action=None)
