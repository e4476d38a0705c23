"""Every admin page of ours checks its permission (issue 8, item 2).

The walk derives its pages from the admin site itself (each registered ModelAdmin's own URL patterns, its actions and
its autocomplete fields), so an admin added later is walked without touching this file. Users as a team has them:
staff with no permission, staff with only view permissions, a non-staff user, and a superuser. (What a team's admin
or member sees of other teams: tests/security/test_team_admin_walk.py.)
"""

from dataclasses import dataclass
from datetime import date

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.forms.models import model_to_dict
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from keys.services import create_api_key
from lockout.models import FailedLogin
from routing.models import AllowedModel, Deployment, ModelAlias
from routing.services import create_model
from teams.models import Membership, Team
from teams.services import create_team
from tests.support.admin_users import logged_in, staff_user
from usage.models import BudgetAlert, DailyUsage, RequestLog

pytestmark = pytest.mark.django_db(transaction=True)

OUR_APPS = ("keys", "routing", "usage", "admin", "lockout", "teams")  # "admin": the audit trail (LogEntry)
MARKER = "walkmarker"  # in every object's visible text: a page that shows it shows data


@dataclass(frozen=True)
class Page:
    url: str
    kind: str  # changelist, add, change, delete, history, or a custom view's name
    model: type


def our_models() -> list[type]:
    return [model for label in OUR_APPS for model in apps.get_app_config(label).get_models()
            if admin.site.is_registered(model)]  # fmt: skip


def one_object(model: type):
    return model._default_manager.order_by("pk").first()


def model_pages(model: type) -> list[Page]:
    """Every named URL of the model's admin, with the walk's object where the URL takes one."""
    model_admin = admin.site.get_model_admin(model)
    prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
    pages = []
    for pattern in model_admin.urls:
        if not pattern.name:
            continue  # the bare "<object_id>/" redirect to the change page
        args = [one_object(model).pk] if pattern.pattern.converters else []
        pages.append(Page(reverse(f"admin:{pattern.name}", args=args), pattern.name.removeprefix(prefix), model))
    return pages


def all_pages() -> list[Page]:
    return [page for model in our_models() for page in model_pages(model)]


def autocomplete_urls() -> list[str]:
    urls = []
    for model in our_models():
        for field_name in admin.site.get_model_admin(model).autocomplete_fields:
            query = f"app_label={model._meta.app_label}&model_name={model._meta.model_name}&field_name={field_name}"
            urls.append(f"{reverse('admin:autocomplete')}?{query}&term=")
    return urls


def action_names(model: type, superuser) -> list[str]:
    request = RequestFactory().get("/")
    request.user = superuser
    return list(admin.site.get_model_admin(model).get_actions(request))


def every_row() -> dict[str, list[dict]]:
    """Every row an admin page of ours could change: our admins' models and the models edited inline."""
    return {model._meta.label: [model_to_dict(obj) for obj in model._default_manager.order_by("pk")]
            for model in [*our_models(), Deployment, Membership]}  # fmt: skip


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("root", "root@example.com", "root-password-0123456789")


@pytest.fixture
def walk_data(superuser) -> None:
    """One object of each of our models, each showing MARKER on its pages (the key and its usage in a team)."""
    team = create_team(name=f"{MARKER}-team", rpm_limit=10)
    key = create_api_key(name=f"{MARKER}-key", rpm_limit=5, team=team).api_key
    model = create_model(f"{MARKER}-model", litellm_model="openai/gpt-4o")
    ModelAlias.objects.create(alias=f"{MARKER}-alias", target=model)
    now = timezone.now()
    RequestLog.objects.create(created_at=now, api_key=key, key_name=key.name, team=team, team_name=team.name,
                              requested_model=model.name, status=200, end_reason="completed",
                              latency_ms=1.0)  # fmt: skip
    DailyUsage.objects.create(day=date.today(), api_key=key, key_name=key.name, team=team, team_name=team.name,
                              model=model.name, requests=1)  # fmt: skip
    BudgetAlert.objects.create(subject="team", team=team, name=team.name, period="month:2026-11", percent=80,
                               spent_usd=8, budget_usd=10)  # fmt: skip
    LogEntry.objects.create(user=superuser, content_type=ContentType.objects.get_for_model(key),  # the walked one
                            object_id=str(key.pk), object_repr=key.name, action_flag=CHANGE,
                            change_message=f"{MARKER} changed")  # fmt: skip
    LogEntry.objects.create(user=superuser, content_type=ContentType.objects.get_for_model(AllowedModel),
                            object_id=str(model.pk), object_repr=model.name, action_flag=CHANGE,
                            change_message=f"{MARKER} changed")  # fmt: skip
    FailedLogin.objects.create(username=f"{MARKER}-user", ip_address="10.0.0.1")
    assert all(one_object(m) is not None for m in our_models()), "the walk needs one object of every model"


def view_permissions() -> list[str]:
    return [f"{model._meta.app_label}.view_{model._meta.model_name}" for model in our_models()]


def in_the_walk_team(user):
    """Administers the walk's team, holding only the permissions given to them (not the "Team admins" group's):
    outside superusers, keys and usage are seen through a team."""
    Membership.objects.create(user=user, team=Team.objects.get(name=f"{MARKER}-team"), role="admin")
    user.groups.clear()
    return get_user_model().objects.get(pk=user.pk)


def test_the_walk_covers_every_admin_of_ours(walk_data):
    kinds = {(page.model._meta.label, page.kind) for page in all_pages()}
    for model in our_models():
        for kind in ("changelist", "add", "change", "delete", "history"):
            assert (model._meta.label, kind) in kinds
    assert {"keys.ApiKey", "routing.AllowedModel", "routing.ModelAlias", "usage.RequestLog", "usage.DailyUsage",
            "usage.BudgetAlert", "admin.LogEntry", "lockout.FailedLogin",
            "teams.Team"} <= {model._meta.label for model in our_models()}  # fmt: skip
    assert autocomplete_urls()


def test_staff_without_permissions_sees_nothing_of_ours(walk_data, superuser):
    client = logged_in(staff_user("nobody"))
    before = every_row()
    for page in all_pages():
        for response in (client.get(page.url), client.post(page.url, {"post": "yes", "_save": "Save"})):
            assert response.status_code == 403, (page, response.status_code)
            assert MARKER not in response.content.decode()
    for model in our_models():
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in action_names(model, superuser):
            data = {"action": action, "_selected_action": [one_object(model).pk], "index": 0, "post": "yes"}
            assert client.post(changelist, data).status_code == 403, (model, action)
    for url in autocomplete_urls():
        response = client.get(url)
        assert response.status_code == 403 and MARKER not in response.content.decode()
    for label in OUR_APPS:
        assert client.get(reverse("admin:app_list", args=[label])).status_code == 404
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    for model in our_models():
        assert f"/{model._meta.app_label}/{model._meta.model_name}/" not in index.content.decode()
    assert every_row() == before


def test_staff_with_view_permissions_reads_but_changes_nothing(walk_data, superuser):
    client = logged_in(in_the_walk_team(staff_user("viewer", *view_permissions())))
    before = every_row()
    for page in all_pages():
        response = client.get(page.url)
        html = response.content.decode()
        if page.kind == "explain":  # a read-only page for whoever may view models (it writes nothing)
            assert response.status_code == 200 and "<form" in html, (page, response.status_code)
        elif page.kind in ("changelist", "change", "history"):
            assert response.status_code == 200, (page, response.status_code)
            assert 'name="_save"' not in html and 'class="addlink"' not in html, page
            assert 'name="_continue"' not in html, page
        else:
            assert response.status_code == 403, (page, response.status_code)
        if page.kind not in ("changelist", "history", "explain"):  # a POST to those only reads (actions: below)
            assert client.post(page.url, {"post": "yes", "_save": "Save"}).status_code == 403, page
    for model in our_models():
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in action_names(model, superuser):
            data = {"action": action, "_selected_action": [one_object(model).pk], "index": 0, "post": "yes"}
            assert client.post(changelist, data).status_code in (200, 302), (model, action)
    for url in autocomplete_urls():
        assert client.get(url).status_code == 200
    assert every_row() == before  # no action, list edit or form changed anything


def test_non_staff_users_are_sent_to_the_login_page(walk_data):
    user = get_user_model().objects.create_user("dev", "dev@example.com", "dev-password-0123456789")
    client = Client()
    client.force_login(user)
    for url in [page.url for page in all_pages()] + autocomplete_urls():
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


def test_a_superuser_reaches_every_page_the_admin_offers(walk_data, superuser):
    client = logged_in(superuser)
    request = RequestFactory().get("/")
    request.user = superuser
    for page in all_pages():
        model_admin = admin.site.get_model_admin(page.model)
        offered = {"add": model_admin.has_add_permission(request),
                   "delete": model_admin.has_delete_permission(request)}.get(page.kind, True)  # fmt: skip
        assert client.get(page.url).status_code == (200 if offered else 403), page
    for url in autocomplete_urls():
        assert client.get(url).status_code == 200


def test_the_audit_trail_shows_only_entries_about_what_the_user_may_view(walk_data, superuser):
    key = one_object(apps.get_model("keys", "ApiKey"))
    LogEntry.objects.create(user=superuser, content_type=ContentType.objects.get_for_model(key),
                            object_id=str(key.pk), object_repr="visible-key-entry", action_flag=CHANGE)  # fmt: skip
    client = logged_in(staff_user("auditor", "admin.view_logentry", "keys.view_apikey"))
    html = client.get(reverse("admin:admin_logentry_changelist")).content.decode()
    assert "visible-key-entry" in html
    assert f"{MARKER}-model" not in html  # an entry about a model: this user may not view models


def test_the_key_page_shows_spend_only_to_users_who_may_view_usage(walk_data):
    key = one_object(apps.get_model("keys", "ApiKey"))
    url = reverse("admin:keys_apikey_change", args=[key.pk])
    key_viewer = logged_in(in_the_walk_team(staff_user("key-viewer", "keys.view_apikey")))
    usage_viewer = logged_in(in_the_walk_team(staff_user("usage-viewer", "keys.view_apikey", "usage.view_dailyusage")))
    assert "All time:" not in key_viewer.get(url).content.decode()
    assert "All time:" in usage_viewer.get(url).content.decode()
