"""The platform admin explains a route for a team's key, exports the policy, edits the file, uploads it, reads the
dry-run diff, applies it, and the gateway serves the new policy (a new alias, a new cap) within 1 s."""

import time

import openai
import pytest
import yaml
from playwright.sync_api import expect

from keys.services import create_api_key
from routing.models import AllowedModel, ModelAlias
from teams.models import Team
from tests.browser.admin_pages import HELLO, log_in, sdk, until
from tests.support.admin_users import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_explain_a_route_then_export_upload_diff_and_apply_a_policy(page, screenshots, house, gateway_url,
                                                                    fake_provider, tmp_path):  # fmt: skip
    key = create_api_key(name="alpha-app", team=house["team"])
    log_in(page, "platform", PASSWORD)
    page.goto("/admin/routing/allowedmodel/")
    expect(page.locator("#result_list")).to_contain_text("house-model")
    page.click(".object-tools a:text-is('Explain a route')")
    page.select_option("#id_key", str(key.api_key.pk))
    page.fill("#id_model", "house")
    page.click("#explain-form [type=submit]")
    explanation = page.locator("#explanation")
    expect(explanation).to_contain_text("served as house-model")
    expect(explanation.locator("h2")).to_have_text(f"house for the key {key.api_key}")
    caps = explanation.locator("h3:text-is('Token caps') + table")
    expect(caps.locator("tr", has_text="max_tokens").first).to_contain_text("at most 7")
    expect(explanation).to_contain_text("fake-model")  # the deployment, tried first
    screenshots(page, "explain-route")
    assert not fake_provider.requests  # explaining calls no provider

    page.goto("/admin/routing/allowedmodel/")
    with page.expect_download() as download:
        page.click(".object-tools a:text-is('Export policy')")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    policy = yaml.safe_load(exported.read_text())
    assert policy["models"]["house-model"]["max_tokens"] == 7 and policy["aliases"] == {"house": "house-model"}
    policy["models"]["house-model"]["max_tokens"] = 4
    policy["aliases"]["quick"] = "house-model"
    policy["teams"]["alpha"]["rpm"] = 300
    edited = tmp_path / "llmproxy-policy-edited.yaml"
    edited.write_text(yaml.safe_dump(policy, sort_keys=False))

    page.click(".object-tools a:text-is('Import policy')")
    page.set_input_files("#id_file", edited)
    page.click("input[value='Show the changes']")
    expect(page.locator("#policy-summary")).to_contain_text("1 added, 2 changed, 0 removed")
    rows = page.locator("#policy-diff tbody tr")
    assert sorted(rows.all_inner_texts()) == sorted([
        "added\talias\tquick\t\ntarget: (none) → house-model",
        "changed\tmodel\thouse-model\t\nmax_tokens: 7 → 4",
        "changed\tteam\talpha\t\nrpm: 600 → 300",
    ])  # fmt: skip
    screenshots(page, "policy-diff")
    assert AllowedModel.objects.get(name="house-model").max_tokens == 7  # the dry run changed nothing
    assert not ModelAlias.objects.filter(alias="quick").exists()

    page.click("input[name=apply]")
    expect(page.locator(".messagelist .success")).to_contain_text("Policy applied: 1 added, 2 changed, 0 removed")
    applied_at = time.monotonic()
    screenshots(page, "policy-applied")
    assert AllowedModel.objects.get(name="house-model").max_tokens == 4
    assert ModelAlias.objects.get(alias="quick").target.name == "house-model"
    assert Team.objects.get(name="alpha").rpm_limit == 300

    app = sdk(gateway_url, key.plaintext)

    def served_as_applied() -> bool:
        try:
            app.chat.completions.create(model="quick", messages=HELLO, max_tokens=100)
        except openai.BadRequestError:  # not an allowed model (yet)
            return False
        return fake_provider.last_request.body["max_tokens"] == 4

    until(served_as_applied, seconds=1.0, what="the new alias served at the new cap")
    assert time.monotonic() - applied_at < 1.0
