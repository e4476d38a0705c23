"""The admin's "Explain a route" page: what the gateway would do with a model name for a key or a team
(routing.explain), the same as `manage.py explain_route`, linked from the models' changelist and a key's page.

Who may use it: superusers and whoever may view models (any key or team they may see, or the gateway alone), and a
team's admins for their own teams' keys and teams. The key and team choices are the user's administered teams'
(teams.access), so another team's key is not a valid choice. Whoever does not hold routing.change_provider_settings
sees no API base host and no key variable name; a team admin who may not view models sees each deployment's
provider, path and health, not its name or LiteLLM model.
"""

from datetime import UTC, datetime

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from keys.models import ApiKey
from routing.explain import as_dict
from routing.explain_inputs import explain_for
from teams.admin import administered_ids, within
from teams.models import Team

TEMPLATE = "admin/routing/explain.html"


def views_models(user) -> bool:
    return user.is_superuser or user.has_perm("routing.view_allowedmodel")


def may_explain(request: HttpRequest) -> bool:
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    return views_models(user) or bool(administered_ids(request))


class ExplainForm(forms.Form):
    key = forms.ModelChoiceField(
        queryset=ApiKey.objects.none(),
        required=False,
        label="API key",
        help_text="Its own model list and its team's apply.",
    )
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        required=False,
        help_text="Or a team: its model list, as for a key of that team without one.",
    )
    model = forms.CharField(max_length=200, label="Model name", help_text="As a caller sends it, e.g. gpt-4o-mini.")

    def __init__(self, *args, request: HttpRequest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        team_ids = administered_ids(request)
        self.fields["key"].queryset = within(ApiKey.objects.select_related("team"), team_ids).order_by("name")
        self.fields["team"].queryset = within(Team.objects.all(), team_ids, "pk").order_by("name")
        self.gateway_only_allowed = views_models(request.user)

    def clean(self):
        data = super().clean()
        if data.get("key") is not None and data.get("team") is not None:
            raise forms.ValidationError("Choose a key or a team, not both (a key's own team applies).")
        if data.get("key") is None and data.get("team") is None and not self.gateway_only_allowed:
            raise forms.ValidationError("Choose one of your teams' keys or one of your teams.")
        return data


def explain_urls(model_admin) -> list:
    """The page, named admin:routing_allowedmodel_explain."""
    name = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_explain"
    view = model_admin.admin_site.admin_view(lambda request: explain_view(request, model_admin))
    return [path("explain/", view, name=name)]


def explain_view(request: HttpRequest, model_admin) -> HttpResponse:
    if not may_explain(request):
        raise PermissionDenied
    bound = bool(request.GET.get("model"))
    form = ExplainForm(
        request.GET if bound else None,
        request=request,
        initial={"key": request.GET.get("key"), "team": request.GET.get("team")},
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Explain a route",
        "form": form,
    }
    if bound and form.is_valid():
        context.update(explained_context(request, form.cleaned_data))
    return TemplateResponse(request, TEMPLATE, context)


def explained_context(request: HttpRequest, data: dict) -> dict:
    explained = explain_for(model_name=data["model"], api_key=data["key"], team=data["team"])
    platform = views_models(request.user)
    provider_settings = request.user.has_perm("routing.change_provider_settings")
    explanation = as_dict(explained.explanation, provider_settings=provider_settings)
    for index, deployment in enumerate(explanation["deployments"], 1):
        cooling_until = explained.explanation.deployments[index - 1].cooling_until
        deployment["health"] = health_text(cooling_until, explained.health_note)
        if not platform:
            deployment["label"], deployment["litellm_model"] = f"deployment {index}", None
    who = data["key"] or data["team"]
    return {
        "explanation": explanation,
        "health_note": explained.health_note,
        "subject": who,
        "subject_kind": "key" if data["key"] else "team" if data["team"] else None,
    }


def health_text(cooling_until: float | None, health_note: str | None) -> str:
    if health_note:  # the shared health is unknown: no Redis (each process keeps its own), or Redis did not answer
        return "per process" if health_note.startswith("per process") else "unknown"
    if cooling_until is None:
        return "healthy"
    until = timezone.localtime(datetime.fromtimestamp(cooling_until, tz=UTC))
    return f"cooling down until {until:%H:%M:%S}"
