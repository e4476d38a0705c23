"""A team's admin and member in the Django admin (Django's test client, logged in through the login form), with the
keys they make checked against the live gateway with the official `openai` SDK (issue 11, delegated administration).
What they must never see or change of another team: tests/security/test_team_admin_walk.py."""

import re
from decimal import Decimal

import openai
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from keys.models import ApiKey
from keys.services import create_api_key
from teams.services import add_team_member, create_team
from tests.support.admin_users import PASSWORD
from tests.support.request_log import rows_once_logged
from usage.recorder import write_rows

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]
KEYS = "/admin/keys/apikey/"
ADD_KEY = "/admin/keys/apikey/add/"


@pytest.fixture
def teams():
    alpha = create_team(name="alpha", rpm_limit=600, tpm_limit=200000, max_budget_usd=Decimal("500"),
                        budget_period="month")  # fmt: skip
    return {"alpha": alpha, "alpha-two": create_team(name="alpha-two"), "bravo": create_team(name="bravo")}


def person(username: str, *memberships) -> Client:
    """A user made a team's admin or member as the command does; logged in through the admin's login form."""
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)
    for team, role in memberships:
        add_team_member(team=team, user=user, role=role)
    client = Client()
    assert client.post("/admin/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


@pytest.fixture
def team_admin(teams) -> Client:
    return person("ada", (teams["alpha"], "admin"), (teams["alpha-two"], "admin"))


@pytest.fixture
def team_member(teams) -> Client:
    return person("max", (teams["alpha"], "member"))


def sdk(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20)


def works(gateway_url: str, key: str) -> bool:
    try:
        sdk(gateway_url, key).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    except openai.AuthenticationError:
        return False
    return True


def shown_keys(response) -> list[str]:
    return re.findall(r'value="(llmp_[^"]+)"', response.content.decode())


def key_form(team, **fields) -> dict:
    return {"name": "alpha-app", "team": str(team.pk), "allowed_models": "", "rpm_limit": "", "tpm_limit": "",
            "max_budget_usd": "", "budget_period": "month", "alert_percent": "", **fields}  # fmt: skip


def team_choices(html: str) -> list[str]:
    select = re.search(r'<select name="team".*?</select>', html, re.S).group(0)
    return [name for value, name in re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', select) if value]


def test_a_team_admin_creates_a_key_for_their_team_shown_once_that_works(team_admin, teams, gateway_url, policy):
    page = team_admin.get(ADD_KEY).content.decode()
    assert team_choices(page) == ["alpha", "alpha-two"]  # their teams, not bravo
    created = team_admin.post(ADD_KEY, key_form(teams["alpha"], rpm_limit="10"))
    assert created.status_code == 200 and "shown only once" in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    [plaintext] = shown_keys(created)
    key = ApiKey.objects.get(name="alpha-app")
    assert (key.team, key.created_by.username, key.rpm_limit) == (teams["alpha"], "ada", 10)
    change_page = team_admin.get(reverse("admin:keys_apikey_change", args=[key.pk])).content.decode()
    assert plaintext not in change_page and "ada" in change_page and "never rotated" in change_page
    assert works(gateway_url, plaintext)


def test_the_team_choice_is_limited_to_the_admins_teams(team_admin, teams):
    for team in ("", str(teams["bravo"].pk)):  # none (a platform key), another team
        refused = team_admin.post(ADD_KEY, {**key_form(teams["alpha"]), "team": team})
        assert refused.status_code == 200 and "errornote" in refused.content.decode()
    assert not ApiKey.objects.filter(name="alpha-app").exists()
    other = create_api_key(name="bravo-app", team=teams["bravo"]).api_key
    assert "bravo-app" not in team_admin.get(KEYS).content.decode()
    assert team_admin.get(reverse("admin:keys_apikey_change", args=[other.pk])).status_code == 302  # "no such key"


def test_limits_above_the_teams_are_refused_with_the_reason(team_admin, teams):
    too_many = team_admin.post(ADD_KEY, key_form(teams["alpha"], rpm_limit="601"))
    assert "At most 600 requests per minute: the team &#x27;alpha&#x27; has no more." in too_many.content.decode()
    assert not ApiKey.objects.filter(name="alpha-app").exists()
    key = create_api_key(name="alpha-app", team=teams["alpha"], rpm_limit=10).api_key
    url = reverse("admin:keys_apikey_change", args=[key.pk])
    over_budget = team_admin.post(url, key_form(teams["alpha"], rpm_limit="10", max_budget_usd="500.01"))
    assert "At most 500 USD per month: the team &#x27;alpha&#x27; has no more." in over_budget.content.decode()
    assert ApiKey.objects.get(pk=key.pk).max_budget_usd is None
    within = team_admin.post(url, key_form(teams["alpha"], rpm_limit="600", max_budget_usd="500"))
    assert within.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).rpm_limit == 600


def test_a_team_admin_revokes_a_key_of_their_team(team_admin, teams, gateway_url, policy):
    created = create_api_key(name="alpha-app", team=teams["alpha"])
    assert works(gateway_url, created.plaintext)
    response = team_admin.post(KEYS, {"action": "revoke_selected", "_selected_action": [created.api_key.pk]})
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is not None
    assert not works(gateway_url, created.plaintext)


def test_rotation_shows_the_new_key_once_and_keeps_the_old_one_for_the_grace(team_admin, teams, gateway_url, policy):
    first = create_api_key(name="alpha-app", team=teams["alpha"])
    action = {"action": "rotate_selected", "_selected_action": [first.api_key.pk]}
    confirm = team_admin.post(KEYS, action).content.decode()
    assert 'name="grace_hours"' in confirm and "alpha-app" in confirm
    assert ApiKey.objects.get(pk=first.api_key.pk).key_hash == first.api_key.key_hash  # nothing yet
    rotated = team_admin.post(KEYS, {**action, "post": "yes", "grace_hours": "24"})
    html = rotated.content.decode()
    [second] = shown_keys(rotated)
    assert "no-store" in rotated["Cache-Control"]
    assert f"The previous key {first.api_key.prefix}… keeps working until" in html
    assert works(gateway_url, second) and works(gateway_url, first.plaintext)  # the grace period
    key_page = team_admin.get(reverse("admin:keys_apikey_change", args=[first.api_key.pk])).content.decode()
    assert f"the previous key {first.api_key.prefix}… works until" in key_page and second not in key_page
    assert "rotatelink" in key_page  # the key page's own button:
    rotate_url = reverse("admin:keys_apikey_rotate", args=[first.api_key.pk])
    assert 'name="grace_hours"' in team_admin.get(rotate_url).content.decode()
    [third] = shown_keys(team_admin.post(rotate_url, {"grace_hours": "0"}))  # no grace: the second stops now
    assert works(gateway_url, third)
    assert not works(gateway_url, second) and not works(gateway_url, first.plaintext)
    history = team_admin.get(reverse("admin:keys_apikey_history", args=[first.api_key.pk])).content.decode()
    assert "Key prefix" in history and second not in history and third not in history  # audited, no secret


def test_a_member_sees_the_teams_usage_read_only(team_member, teams, gateway_url, policy):
    created = create_api_key(name="alpha-app", team=teams["alpha"])
    sdk(gateway_url, created.plaintext).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    [row] = rows_once_logged(1)
    assert row.team_id == teams["alpha"].pk
    log = team_member.get(reverse("admin:usage_requestlog_changelist")).content.decode()
    assert "alpha-app" in log and 'class="addlink"' not in log
    row_page = team_member.get(reverse("admin:usage_requestlog_change", args=[row.pk])).content.decode()
    assert "alpha-app" in row_page and 'name="_save"' not in row_page
    dashboard = team_member.get("/admin/usage/dailyusage/").content.decode()
    assert "<td>alpha-app</td>" in dashboard and "<strong>1</strong> requests" in dashboard
    team_page = team_member.get(reverse("admin:teams_team_change", args=[teams["alpha"].pk])).content.decode()
    assert "Remaining budget" in team_page and 'name="_save"' not in team_page
    assert team_member.get(KEYS).status_code == 403
    assert team_member.post(ADD_KEY, key_form(teams["alpha"])).status_code == 403
    assert (
        team_member.post(KEYS, {"action": "revoke_selected", "_selected_action": [created.api_key.pk]}).status_code
        == 403
    )
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is None


def test_the_team_page_shows_spend_remaining_budget_and_top_keys(team_admin, teams):
    alpha = teams["alpha"]
    small, large = (create_api_key(name=name, team=alpha).api_key for name in ("small-spender", "large-spender"))
    write_rows([usage(small, alpha, "1.25"), usage(large, alpha, "40.5"), usage(large, alpha, "8.25")])
    changelist = team_admin.get(reverse("admin:teams_team_changelist")).content.decode()
    assert "alpha-two" in changelist and "bravo" not in changelist
    page = team_admin.get(reverse("admin:teams_team_change", args=[alpha.pk])).content.decode()
    assert "<strong>$50.0000</strong> spent" in page and "3 requests" in page
    assert "Remaining budget: <strong>$450.0000</strong> of $500.00" in page
    top = page.split('class="team-top-keys"')[1]
    assert top.index("large-spender") < top.index("small-spender") and "$48.7500" in top
    assert 'name="_save"' not in page  # read-only for a team admin: the platform admins edit teams
    assert team_admin.get(reverse("admin:teams_team_change", args=[teams["bravo"].pk])).status_code == 302


def usage(key: ApiKey, team, cost: str) -> dict:
    return {"created_at": timezone.now(), "api_key_id": key.pk, "key_name": key.name, "team_id": team.pk,
            "team_name": team.name, "requested_model": "gpt-4o-mini", "resolved_model": "gpt-4o-mini",
            "litellm_model": "openai/gpt-4o-mini", "streamed": False, "status": 200, "error_code": "",
            "end_reason": "completed", "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "usage_estimated": False, "cost_usd": Decimal(cost), "latency_ms": 5.0, "ttft_ms": None}  # fmt: skip
