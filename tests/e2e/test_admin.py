"""The Django admin as an operator uses it (Django's test client, logged in as a superuser)."""

import re

import httpx
import pytest

from keys.models import ApiKey
from routing.models import AllowedModel, Deployment, ModelAlias
from routing.services import create_model
from tests.support.admin_forms import add_model_data

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "page",
    [
        "keys/apikey/",
        "routing/allowedmodel/",
        "routing/modelalias/",
        "keys/apikey/add/",
        "admin/logentry/",  # the audit trail
        "lockout/failedlogin/",
    ],
)
def test_admin_pages_render(admin_client, policy, api_key, page):
    response = admin_client.get(f"/admin/{page}")
    assert response.status_code == 200


def test_model_list_shows_deployments_cap_and_aliases(admin_client, policy):
    create_model("pool", deployments=[{"litellm_model": "openai/east"}, {"litellm_model": "anthropic/west",
                                                                         "enabled": False}])  # fmt: skip
    html = admin_client.get("/admin/routing/allowedmodel/").content.decode()
    assert "openai/fake-model (openai)" in html and "claude-3-5-sonnet-20241022 (anthropic)" in html
    assert "2: openai/east (openai); anthropic/west (anthropic), off" in html
    assert "fast" in html
    found = admin_client.get("/admin/routing/allowedmodel/?q=anthropic/west").content.decode()
    assert "pool" in found and "gpt-4o-mini" not in found.split('id="result_list"')[1]  # searched by deployment


def test_the_model_list_and_page_show_the_chat_path_each_deployment_takes(admin_client, policy, settings):
    from html import unescape

    def cells(name: str) -> str:
        html = unescape(admin_client.get("/admin/routing/allowedmodel/").content.decode())
        row = next(row for row in html.split("<tr") if f">{name}</a>" in row)
        return re.sub(r"<[^>]+>", "|", row)

    settings.LLMPROXY_TRANSLATED_PATH = True  # whatever the suite's run set
    if settings.LLMPROXY_DIRECT_RELAY:
        assert "|translated|" in cells("claude-3-5-sonnet-20241022")
        assert "|direct relay|" in cells("gpt-4o-mini")
    settings.LLMPROXY_TRANSLATED_PATH = False
    assert "|LiteLLM|" in cells("claude-3-5-sonnet-20241022")
    settings.LLMPROXY_TRANSLATED_PATH = True
    claude = AllowedModel.objects.get(name="claude-3-5-sonnet-20241022")
    Deployment.objects.filter(model=claude).update(use_litellm=True)
    assert "|LiteLLM|" in cells("claude-3-5-sonnet-20241022")
    page = unescape(admin_client.get(f"/admin/routing/allowedmodel/{claude.pk}/change/").content.decode())
    assert "the deployment is set to use LiteLLM" in page


def test_admin_creates_a_key_shown_once_that_works(admin_client, gateway_url, policy):
    response = admin_client.post("/admin/keys/apikey/add/", {"name": "browser-app", "allowed_models": "fast"})
    assert response.status_code == 200
    html = response.content.decode()
    key = re.search(r'value="(llmp_[^"]+)"', html).group(1)
    assert "copy-api-key" in html and "shown only once" in html
    assert "no-store" in response["Cache-Control"]
    stored = ApiKey.objects.get(name="browser-app")
    assert stored.prefix == key[: len(stored.prefix)]
    assert key not in admin_client.get(f"/admin/keys/apikey/{stored.pk}/change/").content.decode()
    ok = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert ok.status_code == 200


def test_revoke_action(admin_client, api_key):
    pk = ApiKey.objects.get(name="test-app").pk
    response = admin_client.post(
        "/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [pk]}, follow=True
    )
    assert response.status_code == 200
    assert ApiKey.objects.get(pk=pk).revoked_at is not None
    assert "Revoked at" in admin_client.get("/admin/admin/logentry/").content.decode()  # in the audit trail


def test_admin_refuses_a_model_nothing_can_route(admin_client):
    response = admin_client.post("/admin/routing/allowedmodel/add/", add_model_data("mystery-model"))
    assert response.status_code == 200
    assert "No provider can route &#x27;mystery-model&#x27;" in response.content.decode()
    assert not AllowedModel.objects.filter(name="mystery-model").exists()


def test_admin_adds_a_model_with_an_inline_alias(admin_client):
    data = add_model_data("claude-3-7-sonnet-20250219", max_tokens=300, aliases=("sonnet",))  # the deployment row blank
    response = admin_client.post("/admin/routing/allowedmodel/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    model = AllowedModel.objects.get(name="claude-3-7-sonnet-20250219")
    assert model.deployments.get().provider == "anthropic" and model.max_tokens == 300
    assert ModelAlias.objects.get(alias="sonnet").target == model


def test_alias_may_not_shadow_a_model_name(admin_client, policy):
    target = AllowedModel.objects.get(name="gpt-4o-mini")
    response = admin_client.post("/admin/routing/modelalias/add/", {"alias": "capped", "target": target.pk})
    assert response.status_code == 200
    assert "already the name of an allowed model" in response.content.decode()


def test_provider_secret_is_never_shown(admin_client, monkeypatch, policy):
    monkeypatch.setenv("LLMPROXY_PROVIDER_KEY_TEAM_OPENAI", "sk-very-secret-provider-key-123")
    Deployment.objects.filter(model__name="gpt-4o-mini").update(api_key_env="LLMPROXY_PROVIDER_KEY_TEAM_OPENAI")
    pk = AllowedModel.objects.get(name="gpt-4o-mini").pk
    html = admin_client.get(f"/admin/routing/allowedmodel/{pk}/change/").content.decode()
    assert "LLMPROXY_PROVIDER_KEY_TEAM_OPENAI is set" in html
    assert "sk-very-secret-provider-key-123" not in html
