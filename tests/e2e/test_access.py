"""Keys, the key's allowlist, /v1/models, /healthz, and the OpenAPI docs through the live server."""

import time
from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi"}]


def chat(gateway_url: str, headers: dict) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO},
        headers=headers,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Missing"),
        ({"Authorization": "Bearer sk-not-one-of-ours-1234567890"}, "Malformed"),
        ({"Authorization": "Bearer llmp_" + "A" * 43}, "Invalid"),
    ],
)
def test_bad_keys_are_401_in_openai_shape(gateway_url, policy, fake_provider, headers, message):
    response = chat(gateway_url, headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert message in error["message"]
    assert error["code"] == "invalid_api_key"
    assert "AAAAAAAA" not in response.text
    assert fake_provider.requests == []


def test_revoked_key_is_rejected_on_the_next_request(openai_client):
    from keys.services import revoke_api_key

    openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    revoke_api_key(name="test-app")
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)


def test_expired_key_is_rejected(openai_client):
    from keys.models import ApiKey

    ApiKey.objects.filter(name="test-app").update(expires_at=timezone.now() - timedelta(seconds=1))
    ApiKey.objects.get(name="test-app").save()  # an admin edit: bumps the version
    with pytest.raises(openai.AuthenticationError, match="expired"):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)


def test_admin_edits_take_effect_on_the_next_request(openai_client, fake_provider):
    from routing.models import AllowedModel

    openai_client.chat.completions.create(model="capped", messages=[{"role": "user", "content": "REPEAT 9"}])
    assert fake_provider.last_request.body["max_tokens"] == 5
    model = AllowedModel.objects.get(name="capped")
    model.max_tokens = 8
    model.save()
    openai_client.chat.completions.create(model="capped", messages=[{"role": "user", "content": "REPEAT 9"}])
    assert fake_provider.last_request.body["max_tokens"] == 8
    model.enabled = False
    model.save()
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(model="capped", messages=HELLO)


def test_key_allowlist_limits_models_and_the_model_list(gateway_url, policy, fake_provider):
    from keys.services import create_api_key

    key = create_api_key(name="narrow", models=["fast"]).plaintext
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude-3-5-sonnet-20241022", messages=HELLO)
    assert caught.value.body["param"] == "model"
    assert sorted(model.id for model in client.models.list()) == ["fast", "gpt-4o-mini"]


def test_models_list_shows_enabled_models_and_aliases(openai_client):
    listed = {model.id: model for model in openai_client.models.list()}
    assert sorted(listed) == ["capped", "claude-3-5-sonnet-20241022", "fast", "gpt-4o-mini"]
    assert listed["claude-3-5-sonnet-20241022"].owned_by == "anthropic"
    assert listed["fast"].object == "model"


def test_models_list_requires_a_key(gateway_url):
    assert httpx.get(f"{gateway_url}/v1/models").status_code == 401


def test_healthz_reports_the_database(gateway_url):
    response = httpx.get(f"{gateway_url}/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_openapi_docs_describe_the_api(gateway_url):
    schema = httpx.get(f"{gateway_url}/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"]
    assert "/v1/models" in schema["paths"]
    docs = httpx.get(f"{gateway_url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_invalid_json_body_is_a_400(gateway_url, api_key, policy):
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        content=b'{"model": "gpt-4o-mini", "messages": [',
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_temperature_out_of_range_names_the_field(openai_client):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, temperature=2.5)
    assert caught.value.body["param"] == "temperature"


def test_last_used_is_recorded(openai_client):
    from keys.models import ApiKey

    openai_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    deadline = time.monotonic() + 5
    while ApiKey.objects.get(name="test-app").last_used_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ApiKey.objects.get(name="test-app").last_used_at is not None


def test_oversized_body_is_a_413_not_a_500(gateway_url, api_key, policy, settings):
    from django.conf import settings as live

    huge = "x" * (live.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": huge}]},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
