"""Secrets: API keys only as hashes (optionally peppered), never in a log line or an error;
provider keys never in the admin or export_policy."""

import hashlib
import hmac
import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from keys.hashing import hash_key, hashes_match
from keys.lookup import InvalidApiKey, KeyCache
from keys.services import create_api_key
from routing.models import AllowedModel, Deployment
from tests.keys.test_keys import authenticate

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_SECRET = "sk-test-SECRET-provider-value-0123456789"


def database_dump() -> str:
    """Every value of every row of every table, as text."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            values.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(values)


def test_the_database_holds_only_the_hash_and_prefix(admin_client):
    created = create_api_key(name="cli-app")
    admin_client.post("/admin/keys/apikey/add/", {"name": "browser-app", "allowed_models": ""})
    dump = database_dump()
    assert created.plaintext not in dump
    assert hash_key(created.plaintext) in dump
    assert created.plaintext[len("llmp_") + 8 :] not in dump  # not even the part after the display prefix


def test_a_key_never_reaches_a_log_line_or_an_error(caplog):
    created = create_api_key(name="app")
    wrong = created.plaintext[:-4] + "AAAA"
    caplog.set_level(logging.DEBUG)
    authenticate(KeyCache(), created.plaintext)
    with pytest.raises(InvalidApiKey) as refused:
        authenticate(KeyCache(), wrong)
    assert wrong not in str(refused.value)
    for secret in (created.plaintext, wrong):
        assert secret not in caplog.text


@override_settings(LLMPROXY_KEY_PEPPER="server-side-pepper-0123456789")
def test_with_a_pepper_keys_are_stored_as_hmac_and_still_work():
    created = create_api_key(name="app")
    expected = hmac.new(b"server-side-pepper-0123456789", created.plaintext.encode(), hashlib.sha256).hexdigest()
    assert created.api_key.key_hash == expected
    assert expected != hashlib.sha256(created.plaintext.encode()).hexdigest()
    assert authenticate(KeyCache(), created.plaintext).name == "app"
    with override_settings(LLMPROXY_KEY_PEPPER="another-pepper"), pytest.raises(InvalidApiKey, match="Invalid"):
        authenticate(KeyCache(), created.plaintext)  # documented: changing the pepper invalidates every key


def test_without_a_pepper_existing_sha256_keys_keep_working():
    created = create_api_key(name="app")
    assert created.api_key.key_hash == hashlib.sha256(created.plaintext.encode()).hexdigest()
    assert hashes_match(created.api_key.key_hash, created.plaintext)


@pytest.fixture
def model_with_provider_secret(monkeypatch, policy) -> AllowedModel:
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_SECRET)
    Deployment.objects.filter(model__name="gpt-4o-mini").update(api_key_env="OPENAI_API_KEY")
    return AllowedModel.objects.get(name="gpt-4o-mini")


def test_provider_secret_is_absent_from_the_admin(admin_client, model_with_provider_secret):
    model = model_with_provider_secret
    change_page = admin_client.get(f"/admin/routing/allowedmodel/{model.pk}/change/").content.decode()
    assert "OPENAI_API_KEY is set" in change_page
    list_page = admin_client.get("/admin/routing/allowedmodel/").content.decode()
    audit_page = admin_client.get("/admin/admin/logentry/").content.decode()
    for html in (change_page, list_page, audit_page):
        assert PROVIDER_SECRET not in html


def test_provider_secret_is_absent_from_export_policy(capsys, model_with_provider_secret):
    call_command("export_policy")
    exported = capsys.readouterr().out
    assert "api_key_env: OPENAI_API_KEY" in exported
    assert PROVIDER_SECRET not in exported
