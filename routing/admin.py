from datetime import UTC, datetime

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from api.admin_test import PROMPT, send_test_request
from audit.changes import AuditedAdminMixin
from routing.admin_explain import explain_urls
from routing.explain import chat_path
from routing.health import DeploymentState, HealthUnavailable, read_health
from routing.models import AllowedModel, Deployment, ModelAlias
from routing.policy import ModelPolicy
from routing.policy_views import may_export, may_import, policy_urls
from routing.provider_keys import provider_key_status

PROVIDER_SETTINGS_PERMISSION = "change_provider_settings"
PER_PROCESS_HEALTH = "per process: set REDIS_URL to see it here"


class ErrorsAboveHiddenFields(forms.ModelForm):
    """Shows a problem that the model's clean() finds in a field this user cannot edit (a read-only provider
    setting) above the form, where Django would otherwise fail with "has no field named …"."""

    def add_error(self, field, error) -> None:
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            placed: dict[str, list] = {}
            for name, errors in error.error_dict.items():
                placed.setdefault(name if name in self.fields else NON_FIELD_ERRORS, []).extend(errors)
            error = ValidationError(placed)
        super().add_error(field, error)


class DeploymentForm(ErrorsAboveHiddenFields):
    def has_changed(self) -> bool:
        """A model's first deployment is saved even when left blank: its defaults route the model by its name."""
        return super().has_changed() or (self.instance.pk is None and not self.empty_permitted)


class DeploymentInline(admin.TabularInline):
    """A model's deployments, edited with the model: whoever may edit the model may edit them (the provider
    settings only with the dedicated permission)."""

    model = Deployment
    form = DeploymentForm
    extra = 0
    min_num = 1  # a model is served by at least one deployment
    fields = (
        "name", "litellm_model", "provider_display", "chat_path_display", "api_base", "api_key_env",
        "provider_key_status", "timeout_seconds", "use_litellm", "weight", "priority", "rpm", "tpm", "enabled",
        "health",
    )  # fmt: skip
    readonly_fields = ("provider_display", "chat_path_display", "provider_key_status", "health")
    provider_settings = ("api_base", "api_key_env")  # where the call goes and which secret it carries

    def may_edit_model(self, request: HttpRequest, obj: AllowedModel | None) -> bool:
        action = "add" if obj is None else "change"
        return request.user.has_perm(
            f"{self.parent_model._meta.app_label}.{action}_{self.parent_model._meta.model_name}"
        )

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        opts = self.parent_model._meta
        return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or self.may_edit_model(request, obj)

    def has_add_permission(self, request: HttpRequest, obj) -> bool:
        return self.may_edit_model(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.may_edit_model(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.may_edit_model(request, obj)

    def may_change_provider_settings(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.parent_model._meta.app_label}.{PROVIDER_SETTINGS_PERMISSION}")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        """Read-only (so posted values are ignored) for anyone without the dedicated permission, add form too."""
        readonly = super().get_readonly_fields(request, obj)
        return readonly if self.may_change_provider_settings(request) else (*readonly, *self.provider_settings)

    def get_formset(self, request: HttpRequest, obj=None, **kwargs):
        ids = list(obj.deployments.values_list("pk", flat=True)) if obj is not None else []
        try:  # read once for the page: the inline instance lives for this request only
            self.health_by_id = read_health(ids, redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX)
            self.health_problem = None
        except HealthUnavailable as exc:
            self.health_by_id, self.health_problem = {}, str(exc)
        return super().get_formset(request, obj, validate_min=True, **kwargs)

    @admin.display(description="provider")
    def provider_display(self, obj: Deployment) -> str:
        if not obj.effective_litellm_model:
            return "-"
        return obj.resolved_provider or obj.provider or "none: cannot be routed"  # stored on save: no LiteLLM import

    @admin.display(description="chat path")
    def chat_path_display(self, obj: Deployment) -> str:
        if not obj.effective_litellm_model:
            return "-"
        path = deployment_chat_path(obj)
        return f"{path.path}: {path.reason}"

    @admin.display(description="provider key")
    def provider_key_status(self, obj: Deployment) -> str:
        if not obj.api_key_env:
            return "not named: none for a custom API base, else the provider's default variable"
        return provider_key_status(obj.api_key_env)  # set or not: only for names allowed as provider keys

    @admin.display(description="health")
    def health(self, obj: Deployment) -> str:
        if obj.pk is None:
            return "-"
        if getattr(self, "health_problem", None):
            return f"unknown: {self.health_problem}"
        health_by_id = getattr(self, "health_by_id", None)
        if health_by_id is None:
            return PER_PROCESS_HEALTH
        return describe_health(health_by_id.get(obj.pk))


def deployment_chat_path(deployment: Deployment):
    """How a chat request reaches this deployment (routing.explain.chat_path: direct relay, translated, LiteLLM), as
    saved (its stored provider: no LiteLLM import) and under this process's settings."""
    policy = ModelPolicy(name=deployment.name or "", litellm_model=deployment.effective_litellm_model,
                         provider=deployment.resolved_provider or deployment.provider or None,
                         api_base=deployment.api_base or None, use_litellm=deployment.use_litellm)  # fmt: skip
    return chat_path(policy, settings.LLMPROXY_DIRECT_RELAY, settings.LLMPROXY_TRANSLATED_PATH)


def describe_health(state: DeploymentState | None) -> str:
    failures = state.recent_failures if state is not None else 0
    counted = f" ({failures} recent failure{'' if failures == 1 else 's'})" if failures else ""
    if state is None or state.cooling_until is None:
        return f"healthy{counted}"
    until = timezone.localtime(datetime.fromtimestamp(state.cooling_until, tz=UTC)).strftime("%H:%M:%S")
    return f"cooling down until {until}{counted}"


class ModelAliasInline(admin.TabularInline):
    model = ModelAlias
    extra = 1
    fields = ("alias",)


@admin.register(AllowedModel)
class AllowedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "deployments_display", "chat_paths_display", "max_tokens", "enabled", "aliases_display")
    form = ErrorsAboveHiddenFields
    list_editable = ("max_tokens", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name", "deployments__name", "deployments__litellm_model", "aliases__alias")
    inlines = (DeploymentInline, ModelAliasInline)
    fieldsets = (
        (None, {"fields": ("name", "enabled", "max_tokens", "max_n", "refused_params")}),
        ("Reliability", {"fields": ("num_retries", "fallbacks", "context_window_fallbacks")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("aliases", "deployments")

    def may_send_test_request(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or request.user.has_perm("routing.change_allowedmodel")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        context = dict(extra_context or {})
        if self.may_send_test_request(request):
            context["test_request_url"] = reverse("admin:routing_allowedmodel_test", args=[object_id])
            context["test_deployments"] = Deployment.objects.filter(model_id=object_id).select_related("model")
        return super().change_view(request, object_id, form_url, context)

    def test_request_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the form; POST: "Say hello." through the real path (api/admin_test.py), the answer or the caller's
        error. Only a POST (with its CSRF token) calls the provider."""
        if not self.may_send_test_request(request):
            raise PermissionDenied
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        model = get_object_or_404(AllowedModel, pk=object_id)
        chosen, result = None, None
        if request.method == "POST" and request.POST.get("deployment"):
            chosen = get_object_or_404(Deployment, model=model, pk=request.POST["deployment"])
        if request.method == "POST":
            result = send_test_request(model=model, deployment=chosen, username=request.user.get_username(),
                                       own_loop=not isinstance(request, ASGIRequest))  # fmt: skip
        context = {**self.admin_site.each_context(request), "title": f"Test request: {model.name}", "model": model,
                   "chosen": chosen, "result": result, "prompt": PROMPT, "opts": self.opts,
                   "deployments": model.deployments.order_by("priority", "id")}  # fmt: skip
        return TemplateResponse(request, "admin/routing/allowedmodel/test_request.html", context)

    def test_request_urls(self) -> list:
        return [path("<path:object_id>/test/", self.admin_site.admin_view(self.test_request_view),
                     name="routing_allowedmodel_test")]  # fmt: skip

    def get_urls(self):
        # "Send a test request" (api/admin_test.py); "Export policy", "Import policy" (routing/policy_views.py);
        # "Explain a route" (routing/admin_explain.py)
        return [*self.test_request_urls(), *policy_urls(self), *explain_urls(self), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        links = {"may_export_policy": may_export(request.user), "may_import_policy": may_import(request.user)}
        return super().changelist_view(request, {**(extra_context or {}), **links})

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        return super().get_changelist_form(request, form=ErrorsAboveHiddenFields, **kwargs)

    @admin.display(description="deployments")
    def deployments_display(self, obj: AllowedModel) -> str:
        deployments = list(obj.deployments.all())
        if not deployments:
            return "none: not served"
        described = [
            f"{deployment.effective_litellm_model} ({deployment.resolved_provider or 'no provider'})"
            + ("" if deployment.enabled else ", off")
            for deployment in deployments
        ]
        return described[0] if len(described) == 1 else f"{len(described)}: " + "; ".join(described)

    @admin.display(description="chat path")
    def chat_paths_display(self, obj: AllowedModel) -> str:
        """Each path the model's enabled deployments take for chat (direct relay, translated, LiteLLM)."""
        paths = dict.fromkeys(deployment_chat_path(d).path for d in obj.deployments.all() if d.enabled)
        return ", ".join(paths) or "-"

    @admin.display(description="aliases")
    def aliases_display(self, obj: AllowedModel) -> str:
        return ", ".join(alias.alias for alias in obj.aliases.all()) or "-"


@admin.register(ModelAlias)
class ModelAliasAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("alias", "target")
    search_fields = ("alias", "target__name")
    list_filter = ("target__enabled",)
    autocomplete_fields = ("target",)
