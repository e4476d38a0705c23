from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from audit.changes import AuditedAdminMixin
from keys.models import ApiKey
from keys.services import create_api_key

LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_budget_usd", "budget_period")


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


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_redacted_fields = ("key_hash",)  # not a form field today; never in the audit trail if it becomes one
    list_display = (
        "name",
        "prefix_display",
        "status",
        "allowed_models_display",
        "created_at",
        "expires_at",
        "last_used_at",
    )
    list_filter = (StatusFilter, "created_at", "expires_at", "last_used_at")
    search_fields = ("name", "prefix", "allowed_models")
    readonly_fields = ("prefix_display", "status", "created_at", "revoked_at", "last_used_at")
    actions = ("revoke_selected",)
    ordering = ("name",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "allowed_models", "expires_at", *LIMIT_FIELDS)
        return (
            "name",
            "prefix_display",
            "status",
            "allowed_models",
            "expires_at",
            "created_at",
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
            ("Limits", {"fields": [name for name in fields if name in LIMIT_FIELDS]}),
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
        )
        saved = created.api_key
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = saved.pk, saved.prefix, saved.key_hash, saved.created_at
        obj._state.adding = False
        obj._state.db = saved._state.db
        request._llmproxy_new_key = created.plaintext

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None) -> HttpResponse:
        plaintext = getattr(request, "_llmproxy_new_key", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": f"API key '{obj.name}' created",
            "opts": self.opts,
            "api_key": obj,
            "plaintext": plaintext,
        }
        response = TemplateResponse(request, "admin/keys/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response
