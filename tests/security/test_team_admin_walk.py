"""A team's admin or member walks EVERY admin URL of the project and sees nothing of another team (issue 11).

The URLs come from the admin site itself (tests/support/admin_walk.py): each registered admin's changelist (plain,
with every filter choice a superuser sees, facets, search, date hierarchy), add page, and every page of every object
of both teams and of the platform (change, delete, history, rotate); each action; every autocomplete field; the
usage dashboard with every filter value; the site's own pages. No response may show a name, key prefix or figure of
team "bravo" or of the platform's own key, and every write to them (change, delete, actions, rotation, an add
into team bravo) is refused and changes no row of the database. Runs on SQLite and, with DATABASE_URL, PostgreSQL.
"""

from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from keys.models import ApiKey
from teams.models import Team
from tests.support.admin_users import PASSWORD
from tests.support.admin_walk import (
    action_names,
    action_post,
    autocomplete_urls,
    change_post,
    changelist_queries,
    every_row,
    model_pages,
    object_pages,
    registered_models,
    site_urls,
)
from tests.support.team_world import ALPHA_COST, ALPHA_TOKENS, World, build_world
from usage.models import DailyUsage

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = "/admin/usage/dailyusage/"
EXPLAIN = "/admin/routing/allowedmodel/explain/"  # "Explain a route": any key or team may be asked for
SEARCH_TERMS = ("bravo", "bravoteam", "bravokey-one", "platformkey", "alphateam", "alpha", "llmp_")
WALKERS = {  # name: (username, permissions given on top of the team group's)
    # The groups give both roles the budget alerts, and team admins the audit trail (teams/groups.py).
    "team admin": ("alpha-admin", ()),
    "team member": ("alpha-member", ()),
    "team member with the audit trail": ("alpha-member", ("admin.view_logentry",)),
}  # fmt: skip


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def world(superuser) -> World:
    return build_world(superuser)


def logged_in_as(username: str, permissions: tuple[str, ...]) -> Client:
    user = get_user_model().objects.get(username=username)
    assert user.is_staff and not user.is_superuser
    assert set(user.groups.values_list("name", flat=True)) == {"Team admins" if "admin" in username else "Team members"}
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    assert client.post("/admin/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


class Walk:
    """The walker's client, checking every answer for the forbidden names and figures."""

    def __init__(self, client: Client, world: World) -> None:
        self.client, self.world, self.answers = client, world, 0

    def check(self, response, what: str, echoed: dict[str, list[str]] | None = None):
        body = response.content.decode("utf-8", errors="replace") + response.get("Location", "")
        for name, values in (echoed or {}).items():  # the walker's own query, shown back (a search box, a link)
            for value in values:
                for echo in (f'value="{escape(value)}"', urlencode({name: value}), quote(urlencode({name: value}))):
                    body = body.replace(echo, "")  # as typed, in a link, in a link's preserved filters
        leaks = [marker for marker in self.world.forbidden if marker in body]
        assert not leaks, f"{what} ({response.status_code}) shows {leaks}"
        assert response.status_code < 500, what
        self.answers += 1
        return response

    def get(self, url: str):
        return self.check(self.client.get(url), f"GET {url}", parse_qs(urlsplit(url).query))

    def post(self, url: str, data: dict):
        return self.check(self.client.post(url, data), f"POST {url} {sorted(data)}")


def walked_objects(world: World) -> list[tuple[type, object]]:
    """Every object of every registered model: both teams', the platform's, and everything else."""
    return [(model, pk) for model in registered_models() for pk in model._default_manager.values_list("pk", flat=True)]


def dashboard_queries(world: World) -> list[str]:
    """Every value of every dashboard filter, the other team's included, alone and combined with the own team."""
    values = {
        "team": ["alphateam", "bravoteam", "", "no-such-team", str(world.bravo.pk)],
        "key": sorted({*ApiKey.objects.values_list("name", flat=True), *DailyUsage.objects.values_list("key_name",
                                                                                                      flat=True)}),
        "model": sorted(set(DailyUsage.objects.values_list("model", flat=True))),
        "endpoint": sorted(set(DailyUsage.objects.values_list("endpoint", flat=True))),
        "days": ["1", "30", "366", "0", "abc"],
    }  # fmt: skip
    queries = [""] + [f"?{urlencode({name: value})}" for name, choices in values.items() for value in choices]
    queries += [f"?{urlencode({'team': 'alphateam', 'key': key})}" for key in values["key"]]
    return queries


def explain_queries() -> list[str]:
    """Every key and team, the other team's and the platform's included, with a model every key may use and none."""
    choices = [{"key": pk} for pk in ApiKey.objects.values_list("pk", flat=True)]
    choices += [{"team": pk} for pk in Team.objects.values_list("pk", flat=True)] + [{}]
    return [f"?{urlencode({**choice, 'model': model})}" for choice in choices for model in ("gpt-4o-mini", "nope")]


def walk_every_page(walk: Walk, world: World, superuser) -> None:
    objects = walked_objects(world)
    for url in site_urls(objects):
        walk.get(url)
    for model in registered_models():
        for page in model_pages(model):
            queries = changelist_queries(model, superuser, SEARCH_TERMS) if page.kind == "changelist" else [""]
            if page.url == DASHBOARD:
                queries += dashboard_queries(world)
            if page.url == EXPLAIN:
                queries += explain_queries()
            for query in queries:
                walk.get(page.url + query)
    for model, pk in objects:
        for page in object_pages(model, pk):
            walk.get(page.url)
    for url in autocomplete_urls(SEARCH_TERMS):
        walk.get(url)


def steal(world: World) -> dict[str, str]:
    """A key's change form moving it into the walker's own team, within that team's limits."""
    return {"team": str(world.alpha.pk), "rpm_limit": "5", "max_budget_usd": ""}


def refused_writes(walk: Walk, world: World, superuser, *, may_manage_alpha_keys: bool) -> None:
    """Every write the admin offers, on every object the walker may not change (for a team admin: all but their own
    team's keys; for a member: everything), and an add into the other team."""
    own_keys = {key.pk for key in world.alpha_keys} if may_manage_alpha_keys else set()
    for model, pk in walked_objects(world):
        obj = model._default_manager.get(pk=pk)
        mine = model is ApiKey and pk in own_keys
        for page in object_pages(model, pk):
            if page.kind == "change" and not mine:
                changes = steal(world) if model is ApiKey else {}
                walk.post(page.url, change_post(model, obj, superuser, **changes))
            elif page.kind == "delete":
                walk.post(page.url, {"post": "yes"})
            elif page.kind not in ("change", "history") and not mine:  # our own object pages: rotate
                walk.post(page.url, {"grace_hours": "1"})
    for model in registered_models():
        others = [pk for pk in model._default_manager.values_list("pk", flat=True) if pk not in own_keys]
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in action_names(model, superuser):
            for pk in others:
                walk.post(changelist, action_post(action, [pk]))
        for page in model_pages(model):
            if page.kind == "add":
                template = model._default_manager.order_by("-pk").first()
                data = change_post(model, template, superuser) if template is not None else {}
                data = {name: "walk-added" if any(marker in str(value) for marker in world.forbidden) else value
                        for name, value in data.items()}  # a refused form shows back what was posted  # fmt: skip
                walk.post(page.url, {**data, "name": "walk-added", "alias": "walk-added", "username": "walk-added"})
    add_key = reverse("admin:keys_apikey_add")
    for team in (str(world.bravo.pk), ""):  # into the other team, and into none (a platform key)
        walk.post(add_key, {"name": "walk-added-key", "team": team, "allowed_models": "", "budget_period": "month"})


@pytest.mark.parametrize("walker", list(WALKERS))
def test_a_team_user_walks_every_admin_url_and_sees_nothing_of_another_team(world, superuser, walker):
    username, permissions = WALKERS[walker]
    walk = Walk(logged_in_as(username, permissions), world)
    walk_every_page(walk, world, superuser)
    assert walk.answers > 300, walk.answers  # the walk is not vacuous
    assert_sees_own_team(walk, world, is_admin="admin" in username, is_auditor=bool(permissions))


@pytest.mark.parametrize("walker", ["team admin", "team member with the audit trail"])
def test_every_write_to_another_team_is_refused_and_changes_nothing(world, superuser, walker):
    username, permissions = WALKERS[walker]
    walk = Walk(logged_in_as(username, permissions), world)
    before = every_row()
    refused_writes(walk, world, superuser, may_manage_alpha_keys="admin" in username)
    assert every_row() == before
    assert not ApiKey.objects.filter(name="walk-added-key").exists()


def assert_sees_own_team(walk: Walk, world: World, *, is_admin: bool, is_auditor: bool) -> None:
    """The walk saw the walker's own team: a walk refused everywhere would prove nothing."""
    team_page = walk.get(reverse("admin:teams_team_change", args=[world.alpha.pk])).content.decode()
    assert "alphateam" in team_page and f"${ALPHA_COST:.4f}</strong> spent" in team_page
    assert f"Remaining budget: <strong>${500 - ALPHA_COST:.4f}</strong> of $500.00" in team_page
    assert "alphakey-one" in team_page and "Top keys" in team_page  # top keys by spend
    dashboard = walk.get(DASHBOARD).content.decode()
    assert "<td>alphakey-one</td>" in dashboard  # and the totals are the own team's alone:
    assert f"<strong>{1000 + 111}</strong> prompt + <strong>{200 + 22}</strong> completion" in dashboard
    assert ALPHA_TOKENS == 1000 + 111 + 200 + 22
    log = walk.get(reverse("admin:usage_requestlog_changelist")).content.decode()
    assert "alphakey-one" in log and "alphakey-two" in log
    keys = walk.client.get(reverse("admin:keys_apikey_changelist"))
    if is_admin:
        assert "alphakey-one" in keys.content.decode() and 'class="addlink"' in keys.content.decode()
    else:
        assert keys.status_code == 403
    explained = walk.client.get(EXPLAIN, {"key": world.alpha_keys[0].pk, "model": "gpt-4o-mini"})
    assert ("<strong>Allowed</strong>" in explained.content.decode()) if is_admin else explained.status_code == 403
    alerts = walk.client.get(reverse("admin:usage_budgetalert_changelist"))
    assert "alphateam" in alerts.content.decode()
    audit = walk.client.get(reverse("admin:admin_logentry_changelist"))
    if is_auditor or is_admin:
        html = audit.content.decode()
        assert ("alpha audit entry" in html) == is_admin  # entries about the keys of teams they administer only
    else:
        assert audit.status_code == 403
    for model in registered_models():  # nothing of the platform's: models, aliases, users, lockouts
        if model._meta.app_label in ("routing", "auth", "lockout"):
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert walk.client.get(url).status_code == 403, url


def test_the_refused_writes_would_change_the_rows_for_a_superuser(world, superuser):
    """The walk's payloads are real: the same posts, made by a superuser, change another team's key and team."""
    client = Client()
    client.force_login(superuser)
    key, team = world.bravo_keys[0], world.bravo
    url = reverse("admin:keys_apikey_change", args=[key.pk])
    assert client.post(url, change_post(ApiKey, key, superuser, **steal(world))).status_code == 302
    assert ApiKey.objects.get(pk=key.pk).team_id == world.alpha.pk
    url = reverse("admin:teams_team_change", args=[team.pk])
    assert client.post(url, change_post(Team, team, superuser, rpm_limit="7")).status_code == 302
    assert Team.objects.get(pk=team.pk).rpm_limit == 7
    changelist = reverse("admin:keys_apikey_changelist")
    client.post(changelist, action_post("revoke_selected", [world.bravo_keys[1].pk]))
    assert ApiKey.objects.get(pk=world.bravo_keys[1].pk).revoked_at is not None
    rotated = client.post(reverse("admin:keys_apikey_rotate", args=[world.platform_key.pk]), {"grace_hours": "1"})
    assert rotated.status_code == 200 and "shown only once" in rotated.content.decode()
