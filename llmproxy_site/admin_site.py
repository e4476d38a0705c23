"""The admin site: its home page leads with what operators do most (keys, teams, models, usage), then audit and
security, in sections with names that say what they hold; an empty database shows a superuser a first-run panel.

Django keeps filtering every section by the user's permissions, so a team admin sees only their own sections.
"""

import json
import shlex

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse

# (section, its models in order as "app_label.ModelName"); a registered model not listed goes to "Other".
SECTIONS = (
    ("Keys and teams", ("keys.ApiKey", "teams.Team")),
    ("Models", ("routing.AllowedModel", "routing.ModelAlias")),
    ("Usage", ("usage.DailyUsage", "usage.RequestLog", "usage.BudgetAlert")),
    ("Audit and security", ("admin.LogEntry", "lockout.FailedLogin", "auth.User", "auth.Group")),
)
OTHER = "Other"


class LlmproxyAdminSite(admin.AdminSite):
    site_header = "llmproxy administration"
    site_title = "llmproxy"
    index_title = "Keys, teams, models and usage"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The home page and the sidebar in SECTIONS' order; an app's own page stays Django's."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        return sections(apps, reverse("admin:index", current_app=self.name))

    def login(self, request: HttpRequest, extra_context: dict | None = None):
        """Django's login page, with the SSO button and password login switchable (sso app, sso/login.py)."""
        from sso.login import login_context, refuse_password_post

        refuse_password_post(request)
        return super().login(request, {**login_context(request), **(extra_context or {})})

    def index(self, request: HttpRequest, extra_context: dict | None = None):
        context = {"first_run": first_run(request), **(extra_context or {})}
        return super().index(request, context)


def sections(apps: list[dict], index_url: str) -> list[dict]:
    by_label = {f"{app['app_label']}.{entry['object_name']}": entry for app in apps for entry in app["models"]}
    grouped: list[dict] = []
    for name, labels in SECTIONS:
        entries = [by_label.pop(label) for label in labels if label in by_label]
        if entries:
            grouped.append(section(name, entries, index_url))
    if by_label:
        grouped.append(section(OTHER, list(by_label.values()), index_url))
    return grouped


def section(name: str, entries: list[dict], index_url: str) -> dict:
    slug = "section-" + name.lower().replace(" ", "-")
    return {"name": name, "app_label": slug, "app_url": f"{index_url}#{slug}", "has_module_perms": True,
            "models": entries}  # fmt: skip


def first_run(request: HttpRequest) -> dict | None:
    """The first steps, for a superuser while no model exists: add a model, test it, create a key, call it."""
    from routing.models import AllowedModel

    if not request.user.is_superuser or AllowedModel.objects.exists():
        return None
    return {
        "add_model_url": reverse("admin:routing_allowedmodel_add"),
        "models_url": reverse("admin:routing_allowedmodel_changelist"),
        "add_key_url": reverse("admin:keys_apikey_add"),
        "curl": curl_line(request.build_absolute_uri("/v1/chat/completions")),
    }


def curl_line(url: str, model: str = "MODEL") -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Say hello."}]})
    return (f"curl {shlex.quote(url)} -H 'Authorization: Bearer YOUR_LLMPROXY_KEY' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")  # fmt: skip
