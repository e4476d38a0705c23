"""Explain a route: `manage.py explain_route` as an operator runs it, and the admin page (Django's test client, a
logged-in session) as a superuser, as a team admin for their own key, and refused for another team's key and for a
staff user without permissions. The walk of every admin URL as a team user (tests/security/test_team_admin_walk.py)
covers the page with the other team's keys too."""

import asyncio
import io
import json
import uuid

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from keys.models import ApiKey
from keys.services import create_api_key
from routing.health import DeploymentHealth
from routing.models import Deployment, ModelAlias
from routing.services import create_model
from teams.services import add_team_member, create_team
from tests.support.admin_users import PASSWORD, logged_in, staff_user
from tests.usage.conftest import redis_url

pytestmark = pytest.mark.django_db(transaction=True)

EXPLAIN = "/admin/routing/allowedmodel/explain/"


@pytest.fixture
def world():
    create_model("local", litellm_model="hosted_vllm/llama", api_base="http://vllm.internal:8000/v1",
                 api_key_env="LLMPROXY_PROVIDER_KEY_VLLM")  # fmt: skip
    mini = create_model("gpt-4o-mini", max_tokens=300, refused_params="service_tier", fallbacks="local",
                        deployments=[{"name": "primary", "litellm_model": "openai/gpt-4o-mini", "priority": 0},
                                     {"name": "backup", "litellm_model": "openai/gpt-4o-mini", "priority": 1,
                                      "use_litellm": True}])  # fmt: skip
    create_model("claude", litellm_model="anthropic/claude-sonnet-4-5")
    ModelAlias.objects.create(alias="mini", target=mini)
    alpha, bravo = create_team(name="alpha", models=["mini", "local"]), create_team(name="bravo")
    create_api_key(name="alpha-app", team=alpha, models=["mini"])
    create_api_key(name="bravo-app", team=bravo)
    create_api_key(name="solo")
    return {"alpha": alpha, "bravo": bravo}


def key_pk(name: str) -> int:
    return ApiKey.objects.get(name=name).pk


def test_the_command_explains_an_allowed_route(world, manage_py):
    out = manage_py("explain_route", "--key", "alpha-app", "--model", "mini").stdout
    assert "Route for key 'alpha-app' (team 'alpha')" in out
    assert "[ok] alias: 'mini' is an alias of 'gpt-4o-mini'" in out
    assert "[ok] key: 'gpt-4o-mini' is in the key's list (mini)" in out
    assert "chat: max_tokens at most 300" in out and "responses: max_output_tokens at most 300" in out
    assert "Refused parameters: service_tier" in out
    assert "1. primary: openai openai/gpt-4o-mini, priority 0" in out
    assert "2. backup: openai openai/gpt-4o-mini, priority 1" in out
    if settings.LLMPROXY_DIRECT_RELAY:  # the suite also runs with the relay switched off (everything via LiteLLM)
        assert "chat, embeddings: direct relay (OpenAI itself)" in out
    else:
        assert "chat, embeddings: direct relay" not in out
    assert "chat, embeddings: LiteLLM (the deployment is set to use LiteLLM)" in out
    assert "health: per process" in out and "(100% first), per process" in out  # no REDIS_URL in the tests' environment
    assert "Fallbacks: local (hosted_vllm, cap none)" in out


def test_the_command_explains_a_refusal_and_speaks_json(world, manage_py):
    out = manage_py("explain_route", "--key", "alpha-app", "--model", "claude").stdout
    assert "[REFUSED] key: 'claude' is not in the key's list (mini)." in out
    assert "Refused: 'claude' is not in the key's list (mini)." in out
    team_out = manage_py("explain_route", "--team", "alpha", "--model", "local", "--json").stdout
    data = json.loads(team_out)
    assert data["allowed"] and data["deployments"][0]["api_base_host"] == "vllm.internal:8000"
    assert data["deployments"][0]["key_variable"] == "LLMPROXY_PROVIDER_KEY_VLLM"
    missing = manage_py("explain_route", "--key", "nobody", "--model", "mini", check=False)
    assert missing.returncode != 0 and "No API key is named 'nobody'" in missing.stderr


def test_a_superuser_explains_any_key_with_provider_settings(world):
    client = logged_in(get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD))
    page = client.get(EXPLAIN)
    assert page.status_code == 200 and "bravo-app" in page.content.decode()
    html = client.get(EXPLAIN, {"team": world["alpha"].pk, "model": "local"}).content.decode()
    assert "Allowed" in html and "vllm.internal:8000" in html and "LLMPROXY_PROVIDER_KEY_VLLM" in html
    html = client.get(EXPLAIN, {"key": key_pk("bravo-app"), "model": "mini"}).content.decode()
    assert "primary" in html and "direct relay" in html and "at most 300" in html
    assert 'href="/admin/routing/allowedmodel/explain/"' in client.get("/admin/routing/allowedmodel/").content.decode()


def team_admin(world) -> Client:
    user = get_user_model().objects.create_user("ada", "ada@example.com", PASSWORD)
    add_team_member(team=world["alpha"], user=user, role="admin")
    client = Client()
    assert client.post("/admin/login/", {"username": "ada", "password": PASSWORD}).status_code == 302
    return client


def test_a_team_admin_explains_their_own_key_without_provider_settings(world):
    client = team_admin(world)
    form = client.get(EXPLAIN).content.decode()
    assert "alpha-app" in form and "bravo-app" not in form and "solo" not in form
    key_page = client.get(reverse("admin:keys_apikey_change", args=[key_pk("alpha-app")])).content.decode()
    assert f'href="{EXPLAIN}?key={key_pk("alpha-app")}"' in key_page
    assert (
        f'<option value="{key_pk("alpha-app")}" selected>'
        in client.get(EXPLAIN, {"key": key_pk("alpha-app")}).content.decode()
    )
    html = client.get(EXPLAIN, {"key": key_pk("alpha-app"), "model": "mini"}).content.decode()
    assert "Allowed" in html and "at most 300" in html and "direct relay" in html and "openai" in html
    assert "deployment 1" in html and "primary" not in html  # provider and path, not the deployment's settings
    html = client.get(EXPLAIN, {"team": world["alpha"].pk, "model": "local"}).content.decode()
    assert "Allowed" in html and "vllm.internal" not in html and "LLMPROXY_PROVIDER_KEY_VLLM" not in html
    assert "hosted_vllm" in html
    refused = client.get(EXPLAIN, {"key": key_pk("alpha-app"), "model": "claude"}).content.decode()
    assert "Refused: &#x27;claude&#x27; is not in the key&#x27;s list (mini)." in refused
    assert "anthropic" not in refused


def test_a_team_admin_cannot_explain_another_team_s_key_or_team(world):
    client = team_admin(world)
    for query in ({"key": key_pk("bravo-app")}, {"key": key_pk("solo")}, {"team": world["bravo"].pk}, {}):
        html = client.get(EXPLAIN, {**query, "model": "mini"}).content.decode()
        assert "Allowed" not in html and "primary" not in html and "deployment 1" not in html, query
        assert "bravo" not in html and "solo" not in html, query


def test_plain_staff_and_team_members_are_refused(world):
    assert logged_in(staff_user("plain")).get(EXPLAIN, {"model": "mini"}).status_code == 403
    member = get_user_model().objects.create_user("max", "max@example.com", PASSWORD)
    add_team_member(team=world["alpha"], user=member, role="member")
    client = Client()
    assert client.post("/admin/login/", {"username": "max", "password": PASSWORD}).status_code == 302
    assert client.get(EXPLAIN, {"key": key_pk("alpha-app"), "model": "mini"}).status_code == 403
    viewer = logged_in(staff_user("viewer", "routing.view_allowedmodel"))
    html = viewer.get(EXPLAIN, {"model": "local"}).content.decode()
    assert "Allowed" in html and "vllm.internal" not in html  # the model, not its provider settings
    assert "alpha-app" not in html  # no key of a team the viewer does not administer


def test_the_shared_health_orders_the_deployments(world, settings):
    """With REDIS_URL, a deployment cooling down (as any gateway worker recorded it) comes last and is not tried."""
    settings.REDIS_URL = redis_url()
    settings.LLMPROXY_REDIS_PREFIX = f"llmproxy-test-explain-{uuid.uuid4().hex}:"
    health = DeploymentHealth(redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX)
    try:
        primary = Deployment.objects.get(name="primary").pk
        asyncio.run(cool_down(health, primary))
        out = io.StringIO()
        call_command("explain_route", "--key", "bravo-app", "--model", "mini", stdout=out)
        text = out.getvalue()
        assert "per process" not in text
        assert "1. backup: openai openai/gpt-4o-mini, priority 1, weight 1 of 1 (100% first), healthy" in text
        assert "2. primary:" in text and "cooling down until" in text and "not tried now" in text
        client = logged_in(get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD))
        html = client.get(EXPLAIN, {"key": key_pk("bravo-app"), "model": "mini"}).content.decode()
        assert "cooling down until" in html and "(not tried now)" in html
    finally:
        health.reset()


async def cool_down(health: DeploymentHealth, deployment_id: int) -> None:
    """As a gateway worker records a provider's 429 with Retry-After: 120 (in Redis, for every worker)."""
    try:
        await health.record_failure(deployment_id, retry_after=120)
    finally:
        await health.close()
