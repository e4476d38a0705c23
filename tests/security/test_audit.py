"""The audit trail: every admin change to keys, models and aliases, with old → new values, read-only in the admin."""

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from keys.models import ApiKey
from routing.models import AllowedModel, ModelAlias
from tests.support.admin_forms import add_model_data, change_model_data

pytestmark = pytest.mark.django_db(transaction=True)


def entries_for(obj) -> list[LogEntry]:
    content_type = ContentType.objects.get_for_model(obj)
    return list(LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk)).order_by("action_time"))


def test_editing_a_models_cap_records_who_and_old_to_new(admin_client, admin_user, policy):
    model = AllowedModel.objects.get(name="capped")
    response = admin_client.post(
        f"/admin/routing/allowedmodel/{model.pk}/change/", change_model_data(model, max_tokens=100)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = entries_for(model)[-1]
    assert entry.action_flag == CHANGE and entry.user == admin_user
    assert entry.get_change_message() == "Changed Max tokens: 5 → 100."


def test_inline_alias_and_list_edits_are_recorded(admin_client, policy):
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    data = change_model_data(model)
    data.update({"aliases-0-alias": "quick", "aliases-TOTAL_FORMS": "2", "aliases-1-alias": "cheap"})
    assert admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", data).status_code == 302
    message = entries_for(model)[-1].get_change_message()
    assert "Alias: fast → quick" in message and "Added model alias “cheap → gpt-4o-mini”" in message

    rows = list(AllowedModel.objects.order_by("name"))
    changelist = {"form-TOTAL_FORMS": str(len(rows)), "form-INITIAL_FORMS": str(len(rows)), "_save": "Save"}
    for index, row in enumerate(rows):
        changelist[f"form-{index}-id"] = row.pk
        changelist[f"form-{index}-max_tokens"] = row.max_tokens or ""
        changelist[f"form-{index}-enabled"] = "on" if row.enabled else ""
    index = next(i for i, row in enumerate(rows) if row.name == "gpt-4o-mini")
    changelist[f"form-{index}-enabled"] = ""
    assert admin_client.post("/admin/routing/allowedmodel/", changelist).status_code == 302
    assert entries_for(model)[-1].get_change_message() == "Changed Enabled: True → False."


def test_deployment_edits_on_the_model_page_are_recorded_with_old_and_new_values(admin_client, fake_provider):
    east = {"name": "east", "litellm_model": "openai/a", "api_base": fake_provider.openai_base}
    response = admin_client.post("/admin/routing/allowedmodel/add/", add_model_data("pool", deployments=[east]))
    assert response.status_code == 302, response.content.decode()[:2000]
    model = AllowedModel.objects.get(name="pool")
    assert entries_for(model)[-1].get_change_message() == "Added. Added deployment “east”."

    moved = "http://10.0.0.9:8000/v1"
    west = {"name": "west", "litellm_model": "openai/b", "priority": 1}
    data = change_model_data(model, deployments={0: {"api_base": moved, "weight": 4}}, new_deployments=[west])
    assert admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", data).status_code == 302
    message = entries_for(model)[-1].get_change_message()
    assert message == (
        f"Added deployment “west”. Changed API base: {fake_provider.openai_base} → {moved} and Weight: 1 → 4 "
        "for deployment “east”."
    )

    data = change_model_data(model, deployments={1: {"DELETE": "on"}})
    assert admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", data).status_code == 302
    assert entries_for(model)[-1].get_change_message() == "Deleted deployment “west”."


def test_alias_retarget_is_recorded(admin_client, policy):
    alias = ModelAlias.objects.get(alias="fast")
    capped = AllowedModel.objects.get(name="capped")
    response = admin_client.post(
        f"/admin/routing/modelalias/{alias.pk}/change/", {"alias": "fast", "target": capped.pk}
    )
    assert response.status_code == 302
    assert entries_for(alias)[-1].get_change_message() == "Changed Target: gpt-4o-mini → capped."


def test_key_edits_and_the_revoke_action_are_recorded_without_the_hash(admin_client, admin_user, api_key):
    key = ApiKey.objects.get(name="test-app")
    response = admin_client.post(
        f"/admin/keys/apikey/{key.pk}/change/",
        {
            "name": "test-app",
            "allowed_models": "fast",
            "expires_at_0": "",
            "expires_at_1": "",
            "budget_period": "month",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert "Allowed models: (empty) → fast" in entries_for(key)[-1].get_change_message()

    admin_client.post("/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]})
    key.refresh_from_db()
    entry = entries_for(key)[-1]
    assert entry.action_flag == CHANGE and entry.user == admin_user
    message = entry.get_change_message()
    assert "Revoked at: (empty) →" in message and "Revoke selected API keys" in message
    for logged in LogEntry.objects.all():
        assert key.key_hash not in logged.change_message and api_key not in logged.change_message


def test_audit_trail_is_visible_and_read_only_in_the_admin(admin_client, policy):
    model = AllowedModel.objects.get(name="capped")
    admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", change_model_data(model, max_tokens=7))
    listing = admin_client.get("/admin/admin/logentry/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "Max tokens: 5 → 7" in html and "capped" in html
    entry = LogEntry.objects.get(action_flag=CHANGE, object_id=str(model.pk))
    assert (
        admin_client.get("/admin/admin/logentry/?action_flag=2&user__id__exact=" + str(entry.user_id)).status_code
        == 200
    )
    assert admin_client.get(f"/admin/admin/logentry/{entry.pk}/change/").status_code == 200  # view-only page
    assert admin_client.get("/admin/admin/logentry/add/").status_code == 403
    assert admin_client.post(f"/admin/admin/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"/admin/admin/logentry/{entry.pk}/change/", {"change_message": "x"}).status_code == 403
    assert LogEntry.objects.filter(pk=entry.pk, change_message=entry.change_message).exists()
    assert not LogEntry.objects.filter(action_flag=ADDITION, content_type__model="logentry").exists()
