"""Limits set on a key's admin page are enforced by the running gateway (issue 8, item 17)."""

import re

import openai
import pytest

from keys.models import ApiKey
from keys.services import create_api_key
from tests.support.openai_gateway import client_for

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]


def call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)


def test_the_add_form_sets_limits_that_the_gateway_enforces(admin_client, gateway_url, policy):
    page = admin_client.get("/admin/keys/apikey/add/").content.decode()
    assert "<h2>Limits</h2>" in page or ">Limits</" in page
    for field in ("rpm_limit", "tpm_limit", "max_budget_usd", "budget_period"):
        assert f'name="{field}"' in page
    created = admin_client.post(
        "/admin/keys/apikey/add/",
        {"name": "limited", "allowed_models": "", "rpm_limit": "1", "tpm_limit": "100000", "max_budget_usd": "5",
         "budget_period": "day"},
    )  # fmt: skip
    assert created.status_code == 200, created.content.decode()[:3000]
    plaintext = re.search(r'value="(llmp_[^"]+)"', created.content.decode()).group(1)
    key = ApiKey.objects.get(name="limited")
    assert (key.rpm_limit, key.tpm_limit, key.max_budget_usd, key.budget_period) == (1, 100000, 5, "day")

    client = client_for(gateway_url, plaintext)
    call(client)
    with pytest.raises(openai.RateLimitError):
        call(client)


def test_a_limit_changed_in_the_admin_reaches_a_warm_gateway(admin_client, gateway_url, policy):
    created = create_api_key(name="app")
    client = client_for(gateway_url, created.plaintext)
    call(client)
    call(client)  # no limit yet, and the gateway has the key cached

    response = admin_client.post(
        f"/admin/keys/apikey/{created.api_key.pk}/change/",
        {"name": "app", "allowed_models": "", "rpm_limit": "1", "tpm_limit": "", "max_budget_usd": "",
         "budget_period": "month"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ApiKey.objects.get(name="app").rpm_limit == 1
    call(client)
    with pytest.raises(openai.RateLimitError):
        call(client)
