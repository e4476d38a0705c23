"""The API trusts only the Bearer key: not an admin's session cookie, not the Host header."""

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_staff_session_cookie_does_not_authenticate_the_api(gateway_url, policy, api_key):
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "correct-horse-battery-staple-42")
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200  # the cookie is a working admin session
    cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}

    models = httpx.get(f"{gateway_url}/v1/models", cookies=cookies, timeout=30)
    chat = httpx.post(f"{gateway_url}/v1/chat/completions", json=HELLO, cookies=cookies, timeout=30)
    for response in (models, chat):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    with_key = httpx.get(
        f"{gateway_url}/v1/models", cookies=cookies, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )
    assert with_key.status_code == 200  # the Bearer key alone decides


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                                              ("GET", "/healthz")])  # fmt: skip
def test_a_foreign_host_header_gets_an_openai_shaped_400(gateway_url, policy, api_key, method, path):
    response = httpx.request(
        method,
        f"{gateway_url}{path}",
        json=HELLO if method == "POST" else None,
        headers={"Host": "evil.example", "Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_host"
    assert api_key not in response.text


def test_unknown_path_is_an_openai_shaped_404(client, settings):
    settings.DEBUG = False
    response = client.post("/v1/no-such-endpoint", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"
