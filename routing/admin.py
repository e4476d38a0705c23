import os

from django.contrib import admin

from audit.changes import AuditedAdminMixin
from routing.models import AllowedModel, ModelAlias


class ModelAliasInline(admin.TabularInline):
    model = ModelAlias
    extra = 1
    fields = ("alias",)


@admin.register(AllowedModel)
class AllowedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "litellm_model_display", "provider_display", "max_tokens", "enabled", "aliases_display")
    list_editable = ("max_tokens", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name", "litellm_model", "aliases__alias")
    readonly_fields = ("provider_display", "provider_key_status")
    inlines = (ModelAliasInline,)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "max_tokens")}),
        (
            "Provider",
            {"fields": ("litellm_model", "provider_display", "api_base", "api_key_env", "provider_key_status")},
        ),
        ("Reliability", {"fields": ("timeout_seconds", "num_retries", "use_litellm")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("aliases")

    @admin.display(description="LiteLLM model", ordering="litellm_model")
    def litellm_model_display(self, obj: AllowedModel) -> str:
        return obj.effective_litellm_model

    @admin.display(description="provider")
    def provider_display(self, obj: AllowedModel) -> str:
        if not obj.name:
            return "-"
        return obj.resolved_provider or obj.provider or "none: cannot be routed"  # stored on save: no LiteLLM import

    @admin.display(description="provider key")
    def provider_key_status(self, obj: AllowedModel) -> str:
        if not obj.api_key_env:
            return "not named: none for a custom API base, else the provider's default variable"
        return f"{obj.api_key_env} is set" if os.environ.get(obj.api_key_env) else f"{obj.api_key_env} is NOT set"

    @admin.display(description="aliases")
    def aliases_display(self, obj: AllowedModel) -> str:
        return ", ".join(alias.alias for alias in obj.aliases.all()) or "-"


@admin.register(ModelAlias)
class ModelAliasAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("alias", "target")
    search_fields = ("alias", "target__name")
    list_filter = ("target__enabled",)
    autocomplete_fields = ("target",)
