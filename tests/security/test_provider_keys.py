"""Provider keys come only from declared variables, and only a dedicated permission may point a model elsewhere.

Issue 8, item 1: a staff user who may edit models must not be able to send a server secret (DJANGO_SECRET_KEY,
DATABASE_URL, …) as a bearer token to a host of their choice, nor learn whether an arbitrary variable is set.
"""

import logging
import os
import re

import openai
import pytest
from django.test import override_settings

from routing.models import AllowedModel, Deployment
from routing.policy_io import PolicyFileError, validate_policy_data
from routing.provider_keys import is_allowed_provider_key_var
from routing.services import create_model
from tests.support.admin_forms import add_model_data, change_model_data
from tests.support.admin_users import logged_in, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]
MODEL_EDITOR_PERMISSIONS = ("routing.add_allowedmodel", "routing.change_allowedmodel", "routing.view_allowedmodel")
SERVER_SECRETS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "LLMPROXY_KEY_PEPPER", "REDIS_URL", "LLMPROXY_PROVIDER_KEY_VARS")


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLMPROXY_PROVIDER_KEY_TEAM_A"])
def test_standard_and_prefixed_variables_may_serve_as_provider_keys(name):
    assert is_allowed_provider_key_var(name)


@pytest.mark.parametrize("name", [*SERVER_SECRETS, "HOME", "AWS_SECRET_ACCESS_KEY", "LLMPROXY_PROVIDER_KEY_"])
def test_other_variables_may_not(name):
    assert not is_allowed_provider_key_var(name)


def test_the_operators_list_admits_its_variables_but_never_the_servers_own_secrets():
    with override_settings(LLMPROXY_PROVIDER_KEY_VARS=("TEAM_OPENAI_KEY", *SERVER_SECRETS)):
        assert is_allowed_provider_key_var("TEAM_OPENAI_KEY")
        for name in SERVER_SECRETS:
            assert not is_allowed_provider_key_var(name)


ATTACKER = {"api_base": "http://attacker.example/v1", "api_key_env": "DJANGO_SECRET_KEY"}


def add_form(api_key_env: str = "", api_base: str = "", **values) -> dict:
    deployment = {"litellm_model": "openai/gpt-4o", "api_base": api_base, "api_key_env": api_key_env}
    return add_model_data("evil", deployments=[deployment], **values)


def provider_settings(model: AllowedModel) -> list[tuple[str, str]]:
    return list(model.deployments.order_by("id").values_list("api_base", "api_key_env"))


def test_a_model_editor_without_the_permission_cannot_set_api_base_or_key_variable():
    editor = logged_in(staff_user("editor", *MODEL_EDITOR_PERMISSIONS))
    page = editor.get("/admin/routing/allowedmodel/add/").content.decode()
    assert 'name="deployments-0-litellm_model"' in page  # the deployment row is there, its provider settings are not
    assert not re.search(r'name="deployments-[^"]*-(api_base|api_key_env)"', page)  # not in the blank row either
    response = editor.post("/admin/routing/allowedmodel/add/", add_form(**ATTACKER))
    assert response.status_code == 302, response.content.decode()[:3000]
    model = AllowedModel.objects.get(name="evil")
    assert provider_settings(model) == [("", "")]  # the posted values were ignored

    edited, added = {**ATTACKER, "api_key_env": "OPENAI_API_KEY"}, {"litellm_model": "openai/gpt-4o", **ATTACKER}
    data = change_model_data(model, deployments={0: edited}, new_deployments=[added], max_tokens=7)
    response = editor.post(f"/admin/routing/allowedmodel/{model.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    model.refresh_from_db()
    assert model.max_tokens == 7
    assert provider_settings(model) == [("", ""), ("", "")]  # neither the edited row nor the added one took them


def test_a_provider_admin_may_name_only_allowed_variables():
    provider_admin = logged_in(staff_user("provider-admin", *MODEL_EDITOR_PERMISSIONS,
                                          "routing.change_provider_settings"))  # fmt: skip
    refusals = {"DJANGO_SECRET_KEY": "own settings", "DATABASE_URL": "own settings", "HOME": "not a provider-key"}
    for name, refusal in refusals.items():
        response = provider_admin.post("/admin/routing/allowedmodel/add/", add_form(api_key_env=name))
        assert response.status_code == 200 and refusal in response.content.decode()
    assert not AllowedModel.objects.filter(name="evil").exists()
    response = provider_admin.post(
        "/admin/routing/allowedmodel/add/",
        add_form(api_base="http://127.0.0.1:9/v1", api_key_env="LLMPROXY_PROVIDER_KEY_TEAM"),
    )
    assert response.status_code == 302
    assert provider_settings(AllowedModel.objects.get(name="evil")) == [("http://127.0.0.1:9/v1",
                                                                         "LLMPROXY_PROVIDER_KEY_TEAM")]  # fmt: skip


def test_the_model_page_tells_whether_a_variable_is_set_only_for_allowed_names(admin_client, monkeypatch, policy):
    monkeypatch.setenv("LLMPROXY_PROVIDER_KEY_TEAM", "sk-team-value-0123456789")
    Deployment.objects.filter(model__name="gpt-4o-mini").update(api_key_env="LLMPROXY_PROVIDER_KEY_TEAM")
    Deployment.objects.filter(model__name="capped").update(api_key_env="DJANGO_SECRET_KEY")  # around the admin
    allowed = AllowedModel.objects.get(name="gpt-4o-mini")
    refused = AllowedModel.objects.get(name="capped")
    page = admin_client.get(f"/admin/routing/allowedmodel/{allowed.pk}/change/").content.decode()
    assert "LLMPROXY_PROVIDER_KEY_TEAM is set" in page
    page = admin_client.get(f"/admin/routing/allowedmodel/{refused.pk}/change/").content.decode()
    assert "DJANGO_SECRET_KEY is set" not in page and "DJANGO_SECRET_KEY is NOT set" not in page
    assert os.environ["DJANGO_SECRET_KEY"] not in page


def test_import_refuses_a_servers_secret_as_provider_key():
    for secret in ("DJANGO_SECRET_KEY", "SOME_OTHER_VARIABLE"):
        with pytest.raises(PolicyFileError, match=f"models.m.api_key_env: {secret}"):
            validate_policy_data({"models": {"m": {"litellm_model": "openai/m", "api_key_env": secret}}})


def test_a_refused_variable_is_never_sent_even_if_the_row_bypassed_the_checks(
    openai_client, fake_provider, caplog, transactional_db
):
    Deployment.objects.filter(model__name="gpt-4o-mini").update(api_key_env="DJANGO_SECRET_KEY")
    Deployment.objects.get(model__name="gpt-4o-mini").save()  # save() bumps the policy version, clean() never ran
    caplog.set_level(logging.ERROR)
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "provider_not_configured"
    assert fake_provider.requests == []
    assert "DJANGO_SECRET_KEY" in caplog.text  # the operator learns which variable
    assert os.environ["DJANGO_SECRET_KEY"] not in caplog.text


def test_a_refused_variable_on_an_older_row_is_shown_to_an_editor_who_cannot_change_it():
    model = create_model("legacy", litellm_model="openai/gpt-4o")
    model.deployments.update(api_key_env="TEAM_OPENAI_KEY")  # named before the rule existed
    editor = logged_in(staff_user("editor", *MODEL_EDITOR_PERMISSIONS))
    response = editor.post(f"/admin/routing/allowedmodel/{model.pk}/change/", change_model_data(model, max_tokens=7))
    assert response.status_code == 200
    assert "TEAM_OPENAI_KEY is not a provider-key variable" in response.content.decode()
    model.refresh_from_db()
    assert model.max_tokens is None
