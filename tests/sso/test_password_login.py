"""Password login next to single sign-on: switched off on request (no form, a crafted POST refused), untouched when
SSO is not configured."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import Client

from tests.support.admin_users import PASSWORD
from tests.support.fake_oidc import OidcUser
from tests.support.oidc_login import browser_like_client, sso_configured, sso_login

pytestmark = pytest.mark.django_db(transaction=True)
INDEX_TITLE = "Keys, teams, models and usage"


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


def password_login(client: Client) -> int:
    return client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD}).status_code


def test_without_sso_the_login_page_is_todays(superuser, settings):
    assert not settings.LLMPROXY_OIDC_ISSUER
    client = Client()
    page = client.get("/admin/login/").content.decode()
    assert 'id="login-form"' in page and 'name="password"' in page
    assert "sso-login" not in page and "Log in with" not in page
    assert client.get("/admin/sso/login/").status_code == 404
    assert client.get("/admin/sso/callback/?code=x&state=y").status_code == 404
    assert password_login(client) == 302 and client.get("/admin/").status_code == 200


def test_with_sso_both_ways_are_offered(superuser, gateway_url, oidc_provider):
    page = Client().get("/admin/login/").content.decode()
    assert 'id="sso-login-button"' in page and "Log in with Fake ID" in page and 'id="login-form"' in page
    client = Client()
    assert password_login(client) == 302 and client.get("/admin/").status_code == 200


def test_password_login_switched_off(superuser, gateway_url, oidc_provider):
    with sso_configured(oidc_provider, LLMPROXY_PASSWORD_LOGIN="0"):
        page = Client().get("/admin/login/").content.decode()
        assert 'id="sso-login-button"' in page
        assert 'id="login-form"' not in page and 'name="password"' not in page
        client = Client()  # no CSRF check: the refusal is the login's, not the CSRF middleware's
        assert password_login(client) == 403
        assert client.get("/admin/").status_code == 302  # to the login page: nobody is logged in
        assert authenticate(username="root", password=PASSWORD) is None  # no backend takes a password either
        oidc_provider.user = OidcUser(sub="sub-ada", email="ada@example.com", groups=["llmproxy:superuser"])
        browser = browser_like_client(gateway_url)
        assert INDEX_TITLE in sso_login(browser, gateway_url).text  # single sign-on still works


def test_a_provider_that_is_down_costs_only_the_sso_button(superuser, oidc_provider, openai_client):
    """Discovery is read on the first SSO login only: password login and the API never wait for the provider."""
    with sso_configured(oidc_provider, LLMPROXY_OIDC_ISSUER="http://127.0.0.1:9"):  # nothing listens there
        client = Client()
        assert password_login(client) == 302 and client.get("/admin/").status_code == 200
        reply = openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        refused = Client().get("/admin/sso/login/", follow=True)
        assert "Single sign-on is unavailable" in refused.content.decode()
