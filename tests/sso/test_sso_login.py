"""Single sign-on for the admin, driven over HTTP against the live gateway and the fake OIDC provider: the browser's
redirects followed by a cookie-keeping client, the provider checking PKCE, the code and the redirect URI."""

import secrets
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model

from keys.services import create_api_key
from sso.models import OidcIdentity
from teams.groups import TEAM_ADMINS, TEAM_MEMBERS
from teams.models import Membership
from teams.services import add_team_member, create_team
from tests.support.admin_users import PASSWORD
from tests.support.fake_oidc import OidcUser, s256
from tests.support.oidc_login import browser_like_client, sso_login

pytestmark = pytest.mark.django_db(transaction=True)
INDEX_TITLE = "Keys, teams, models and usage"
NO_ROLE = "has no admin role here"


def logged_in(client: httpx.Client) -> bool:
    return client.get("/admin/").status_code == 200


def user_for(sub: str):
    return OidcIdentity.objects.select_related("user").get(subject=sub).user


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode({k: v for k, v in query.items() if v is not None})))


def test_a_superuser_logs_in_through_the_provider_with_pkce(gateway_url, oidc_provider):
    oidc_provider.user = OidcUser(sub="sub-ada", email="ada@example.com", preferred_username="ada",
                                  groups=["llmproxy:superuser"])  # fmt: skip
    client = browser_like_client(gateway_url)
    page = sso_login(client, gateway_url)
    assert page.status_code == 200 and INDEX_TITLE in page.text, page.text[:2000]
    assert str(page.url) == f"{gateway_url}/admin/"
    user = user_for("sub-ada")
    assert (user.username, user.email, user.is_staff, user.is_superuser) == ("ada", "ada@example.com", True, True)
    assert not user.has_usable_password()
    authorization, token_request = oidc_provider.authorizations[-1], oidc_provider.token_requests[-1]
    assert authorization["code_challenge_method"] == "S256"
    assert s256(token_request["code_verifier"]) == authorization["code_challenge"]  # the verifier was sent
    entry = LogEntry.objects.get(user=user, object_id=str(user.pk))
    assert "Logged in with single sign-on (superuser)" in entry.get_change_message()


def test_the_login_comes_back_to_the_page_asked_for(gateway_url, oidc_provider):
    oidc_provider.user = OidcUser(sub="sub-n", email="n@example.com", groups=["llmproxy:superuser"])
    page = sso_login(browser_like_client(gateway_url), gateway_url, next_url="/admin/keys/apikey/")
    assert page.status_code == 200 and str(page.url) == f"{gateway_url}/admin/keys/apikey/"


def test_a_wrong_verifier_fails_the_login(gateway_url, oidc_provider):
    """The browser carries a challenge for another verifier: the provider refuses the gateway's verifier."""
    oidc_provider.user = OidcUser(sub="sub-eve", email="eve@example.com", groups=["llmproxy:superuser"])
    other_challenge = s256(secrets.token_urlsafe(48))

    def tamper(url: str) -> str:
        return with_query(url, code_challenge=other_challenge) if url.startswith(oidc_provider.issuer) else url

    client = browser_like_client(gateway_url)
    page = sso_login(client, gateway_url, rewrite=tamper)
    assert str(page.url).startswith(f"{gateway_url}/admin/login/")
    assert "Single sign-on failed" in page.text
    assert "PKCE verification failed" in oidc_provider.errors
    assert not logged_in(client) and not OidcIdentity.objects.exists()


def test_an_authorization_request_without_a_challenge_is_refused(gateway_url, oidc_provider):
    oidc_provider.user = OidcUser(sub="sub-eve", email="eve@example.com", groups=["llmproxy:superuser"])

    def strip(url: str) -> str:
        return with_query(url, code_challenge=None) if url.startswith(oidc_provider.issuer) else url

    client = browser_like_client(gateway_url)
    page = sso_login(client, gateway_url, rewrite=strip)
    assert "The provider refused the login: invalid_request" in page.text
    assert not logged_in(client)


def test_a_replayed_callback_logs_nobody_in(gateway_url, oidc_provider):
    oidc_provider.user = OidcUser(sub="sub-ada", email="ada@example.com", groups=["llmproxy:superuser"])
    callbacks = []

    def capture(url: str) -> str:
        if "/admin/sso/callback/" in url:
            callbacks.append(url)
        return url

    assert INDEX_TITLE in sso_login(browser_like_client(gateway_url), gateway_url, rewrite=capture).text
    thief = browser_like_client(gateway_url)
    replay = thief.get(callbacks[0])
    assert replay.status_code in (302, 400) and not logged_in(thief)


@pytest.mark.parametrize(
    "claims",
    [{"aud": "another-client"}, {"iss": "https://elsewhere.example"}, {"exp": 1_000_000_000}, {"nonce": "stale"}],
    ids=["audience", "issuer", "expired", "nonce"],
)
def test_an_id_token_for_someone_else_is_refused(gateway_url, oidc_provider, claims):
    oidc_provider.user = OidcUser(sub="sub-ada", email="ada@example.com", groups=["llmproxy:superuser"])
    oidc_provider.id_token_claims = claims
    client = browser_like_client(gateway_url)
    page = sso_login(client, gateway_url)
    assert "Single sign-on failed" in page.text and not logged_in(client)


def test_a_user_whose_groups_grant_nothing_is_refused(gateway_url, oidc_provider):
    oidc_provider.user = OidcUser(sub="sub-bob", email="bob@example.com", groups=["engineering"])
    client = browser_like_client(gateway_url)
    page = sso_login(client, gateway_url)
    assert page.status_code == 200 and NO_ROLE in page.text
    assert not logged_in(client)
    assert not OidcIdentity.objects.exists() and not get_user_model().objects.exists()  # no account made


def test_staff_is_granted_and_taken_away_with_the_group(gateway_url, oidc_provider):
    oidc_provider.user = OidcUser(sub="sub-sam", email="sam@example.com", groups=["llmproxy:staff"])
    client = browser_like_client(gateway_url)
    assert sso_login(client, gateway_url).status_code == 200 and logged_in(client)
    user = user_for("sub-sam")
    assert user.is_staff and not user.is_superuser
    oidc_provider.user = OidcUser(sub="sub-sam", email="sam@example.com", groups=[])
    later = browser_like_client(gateway_url)
    assert NO_ROLE in sso_login(later, gateway_url).text and not logged_in(later)
    assert not user_for("sub-sam").is_staff
    messages = [e.get_change_message() for e in LogEntry.objects.filter(object_id=str(user.pk))]
    assert any("no admin role: login refused" in m and "Staff status: True → False" in m for m in messages)


def test_a_username_taken_by_a_password_account_is_not_taken_over(gateway_url, oidc_provider):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    oidc_provider.user = OidcUser(sub="sub-x", email="root@example.com", preferred_username="root",
                                  groups=["llmproxy:superuser"])  # fmt: skip
    client = browser_like_client(gateway_url)
    assert "already exists and was not made by single sign-on" in sso_login(client, gateway_url).text
    assert not logged_in(client) and not OidcIdentity.objects.exists()


def test_an_sso_team_admin_is_a_team_admin_and_sees_only_their_team(gateway_url, oidc_provider):
    alpha, bravo = create_team(name="alpha"), create_team(name="bravo")
    create_api_key(name="alpha-key-visible", team=alpha)
    create_api_key(name="bravo-key-hidden", team=bravo)
    password_admin = get_user_model().objects.create_user("pat", "pat@example.com", PASSWORD)
    add_team_member(team=alpha, user=password_admin, role="admin")
    oidc_provider.user = OidcUser(sub="sub-tia", email="tia@example.com", preferred_username="tia",
                                  groups=["llmproxy:team:alpha:admin", "llmproxy:team:missing:admin"])  # fmt: skip
    client = browser_like_client(gateway_url)
    assert sso_login(client, gateway_url).status_code == 200
    keys_page = client.get("/admin/keys/apikey/")
    assert keys_page.status_code == 200
    assert "alpha-key-visible" in keys_page.text and "bravo-key-hidden" not in keys_page.text
    tia, pat = user_for("sub-tia"), get_user_model().objects.get(username="pat")
    assert set(tia.groups.values_list("name", flat=True)) == set(pat.groups.values_list("name", flat=True))
    assert tia.get_all_permissions() == pat.get_all_permissions() and tia.is_staff and not tia.is_superuser

    oidc_provider.user = OidcUser(sub="sub-tia", email="tia@example.com", preferred_username="tia",
                                  groups=["llmproxy:team:bravo:member"])  # fmt: skip
    assert sso_login(browser_like_client(gateway_url), gateway_url).status_code == 200
    assert list(Membership.objects.filter(user=tia).values_list("team__name", "role")) == [("bravo", "member")]
    assert set(tia.groups.values_list("name", flat=True)) == {TEAM_MEMBERS} != {TEAM_ADMINS}
