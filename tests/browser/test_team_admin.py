"""A team's admin (staff, not a superuser) makes a key in the browser and reads it from the page; an app calls the
gateway with it through the `openai` SDK and the alias, under the model's cap; the platform admin lowers the cap in
the browser and the next request is capped within 1 s; the team admin revokes the key and the next request is
refused."""

import time

import openai
import pytest
from playwright.sync_api import expect

from keys.models import ApiKey
from routing.models import AllowedModel
from tests.browser.admin_pages import HELLO, log_in, save, sdk, section_names, until
from tests.support.admin_users import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_team_admin_makes_a_key_the_cap_applies_changes_and_revoking_stops_it(new_page, screenshots, house,
                                                                               gateway_url, fake_provider):  # fmt: skip
    team_admin = new_page()
    log_in(team_admin, "ada", PASSWORD)
    assert section_names(team_admin)[0] == "Keys and teams"
    screenshots(team_admin, "team-admin-home")

    team_admin.click("#section-keys-and-teams-apikey + td a.addlink")
    team_admin.fill("#id_name", "alpha-app")
    assert team_admin.locator("#id_team option").all_text_contents() == ["alpha"]  # their team only, no platform key
    team_admin.select_option("#id_team", label="alpha")
    screenshots(team_admin, "add-key")
    save(team_admin)
    expect(team_admin.locator("#content-main")).to_contain_text("It is shown only once")
    plaintext = team_admin.input_value("#new-api-key")
    assert plaintext.startswith("llmp_")
    screenshots(team_admin, "key-shown-once")
    key = ApiKey.objects.get(name="alpha-app")
    assert key.team == house["team"] and key.created_by == house["team_admin"]

    app = sdk(gateway_url, plaintext)
    reply = app.chat.completions.create(model="house", messages=HELLO, max_tokens=100)
    assert reply.choices[0].message.content
    sent = fake_provider.last_request.body
    assert (sent["model"], sent["max_tokens"]) == ("fake-model", 7)  # the alias's target, at its cap

    platform = new_page()
    log_in(platform, "platform", PASSWORD)
    platform.goto(f"/admin/routing/allowedmodel/{house['model'].pk}/change/")
    platform.fill("#id_max_tokens", "3")
    save(platform)
    expect(platform.locator(".messagelist .success")).to_contain_text("house-model")
    changed_at = time.monotonic()
    assert AllowedModel.objects.get(pk=house["model"].pk).max_tokens == 3
    screenshots(platform, "cap-changed")

    def capped_at_3() -> bool:
        app.chat.completions.create(model="house", messages=HELLO, max_tokens=100)
        return fake_provider.last_request.body["max_tokens"] == 3

    until(capped_at_3, seconds=1.0, what="the next request capped at the new cap")
    assert time.monotonic() - changed_at < 1.0

    team_admin.goto("/admin/keys/apikey/")
    team_admin.check("#result_list input.action-select")
    team_admin.select_option("select[name=action]", "revoke_selected")
    screenshots(team_admin, "revoke-key")
    team_admin.click("button[name=index]")
    expect(team_admin.locator(".messagelist .success")).to_have_text("Revoked 1 key(s).")
    screenshots(team_admin, "key-revoked")
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    requests_before = len(fake_provider.requests)
    with pytest.raises(openai.AuthenticationError) as refused:
        app.chat.completions.create(model="house", messages=HELLO)
    assert refused.value.status_code == 401
    assert len(fake_provider.requests) == requests_before  # refused at the gateway: the provider saw nothing
