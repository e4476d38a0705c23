from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest

from audit.changes import AuditedAdminMixin
from routing.models import AllowedModel, ModelAlias
from routing.provider_keys import provider_key_status

PROVIDER_SETTINGS_PERMISSION = "change_provider_settings"


class AllowedModelForm(forms.ModelForm):
    """Shows a problem that AllowedModel.clean() finds in a field this user cannot edit (a read-only provider
    setting) above the form, where Django would otherwise fail with "has no field named …"."""

    def add_error(self, field, error) -> None:
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            placed: dict[str, list] = {}
            for name, errors in error.error_dict.items():
                placed.setdefault(name if name in self.fields else NON_FIELD_ERRORS, []).extend(errors)
            error = ValidationError(placed)
        super().add_error(field, error)


class ModelAliasInline(admin.TabularInline):
    model = ModelAlias
    extra = 1
    fields = ("alias",)


@admin.register(AllowedModel)
class AllowedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "litellm_model_display", "provider_display", "max_tokens", "enabled", "aliases_display")
    form = AllowedModelForm
    list_editable = ("max_tokens", "enabled")  # never api_base/api_key_env: list_editable cannot vary per user
    list_filter = ("enabled",)
    search_fields = ("name", "litellm_model", "aliases__alias")
    readonly_fields = ("provider_display", "provider_key_status")
    provider_settings = ("api_base", "api_key_env")  # where the call goes and which secret it carries
    inlines = (ModelAliasInline,)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "max_tokens", "max_n", "refused_params")}),
        (
            "Provider",
            {"fields": ("litellm_model", "provider_display", "api_base", "api_key_env", "provider_key_status")},
        ),
        ("Reliability", {"fields": ("timeout_seconds", "num_retries", "use_litellm")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("aliases")

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        return super().get_changelist_form(request, form=AllowedModelForm, **kwargs)

    def may_change_provider_settings(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{PROVIDER_SETTINGS_PERMISSION}")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        """Read-only (so posted values are ignored) for anyone without the dedicated permission, add form too."""
        readonly = super().get_readonly_fields(request, obj)
        return readonly if self.may_change_provider_settings(request) else (*readonly, *self.provider_settings)

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
        return provider_key_status(obj.api_key_env)  # set or not: only for names allowed as provider keys

    @admin.display(description="aliases")
    def aliases_display(self, obj: AllowedModel) -> str:
        return ", ".join(alias.alias for alias in obj.aliases.all()) or "-"


@admin.register(ModelAlias)
class ModelAliasAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("alias", "target")
    search_fields = ("alias", "target__name")
    list_filter = ("target__enabled",)
    autocomplete_fields = ("target",)
