"""Single sign-on in the browser: the admin's login page offers the company's provider (here the fake OIDC provider
of tests/support/fake_oidc.py, which approves at once), Chromium follows the authorization code flow with PKCE, and
the admin index appears with the roles the provider's groups grant (a team's admin)."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from teams.models import Membership, Role
from teams.services import create_team
from tests.browser.admin_pages import section_names
from tests.support.fake_oidc import OidcUser

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_team_admin_logs_in_through_the_oidc_provider(page, screenshots, oidc_provider, gateway_url):
    team = create_team(name="alpha")
    oidc_provider.user = OidcUser(sub="sub-grace", email="grace@example.com", preferred_username="grace",
                                  groups=["llmproxy:team:alpha:admin"])  # fmt: skip
    page.goto("/admin/")
    button = page.locator("#sso-login-button")
    expect(button).to_contain_text("Log in with")
    expect(page.locator("#login-form")).to_be_visible()  # password login stays on unless switched off
    screenshots(page, "login-with-sso")
    back_at_the_admin = re.compile(re.escape(gateway_url) + r"/admin/(login/)?(\?.*)?$")
    with page.expect_navigation(url=back_at_the_admin):  # through /admin/sso/login/, the provider, the callback
        button.click()
    assert not oidc_provider.errors, oidc_provider.errors  # what the provider refused, if anything
    expect(page.locator("#user-tools")).to_contain_text("grace")
    assert page.url == f"{gateway_url}/admin/"
    assert section_names(page)[0] == "Keys and teams"
    screenshots(page, "logged-in-through-sso")
    authorization = oidc_provider.authorizations[-1]
    assert authorization["code_challenge_method"] == "S256"  # the browser went through the provider, with PKCE
    user = get_user_model().objects.get(username="grace")
    assert (user.email, user.is_staff, user.is_superuser, user.has_usable_password()) == (
        "grace@example.com", True, False, False)  # fmt: skip
    membership = Membership.objects.get(user=user)
    assert (membership.team, membership.role) == (team, Role.ADMIN)
