"""The fake OIDC provider refuses what a real one refuses (tests/support/fake_oidc.py), so an SSO test can fail."""

import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.support.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider, OidcUser, s256

REDIRECT_URI = "http://127.0.0.1:1/callback/"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOidcProvider]:
    with FakeOidcProvider(redirect_uris=[REDIRECT_URI]) as provider:
        yield provider


@pytest.fixture
def oidc(provider: FakeOidcProvider) -> FakeOidcProvider:
    provider.reset()
    provider.user = OidcUser(sub="u-42", email="ada@example.com", groups=["llmproxy:staff"])
    return provider


def authorize(provider: FakeOidcProvider, verifier: str, **overrides: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": "openid email",
              "state": "st-1", "nonce": "n-1", "code_challenge": s256(verifier), "code_challenge_method": "S256",
              **overrides}  # fmt: skip
    response = httpx.get(f"{provider.issuer}/authorize", params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def exchange(provider: FakeOidcProvider, code: str, verifier: str, **overrides: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "code_verifier": verifier, **overrides}  # fmt: skip
    return httpx.post(f"{provider.issuer}/token", data=form)


def test_the_whole_flow_gives_a_signed_id_token_and_userinfo(oidc):
    discovery = httpx.get(f"{oidc.issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == oidc.issuer and discovery["code_challenge_methods_supported"] == ["S256"]
    verifier = secrets.token_urlsafe(48)
    answer = authorize(oidc, verifier)
    assert answer["state"] == "st-1"
    tokens = exchange(oidc, answer["code"], verifier)
    assert tokens.status_code == 200 and tokens.headers["cache-control"] == "no-store"
    id_token = tokens.json()["id_token"]
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(id_token)
    claims = jwt.decode(id_token, key, algorithms=["RS256"], audience=CLIENT_ID, issuer=oidc.issuer)
    assert (claims["sub"], claims["nonce"], claims["groups"]) == ("u-42", "n-1", ["llmproxy:staff"])
    info = httpx.get(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert info.json()["email"] == "ada@example.com"


def test_a_wrong_verifier_is_refused(oidc):
    answer = authorize(oidc, secrets.token_urlsafe(48))
    refused = exchange(oidc, answer["code"], secrets.token_urlsafe(48))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_a_short_verifier_is_refused_even_when_it_matches(oidc):
    answer = authorize(oidc, "too-short")
    assert exchange(oidc, answer["code"], "too-short").json()["error"] == "invalid_grant"


def test_a_code_works_once_and_its_reuse_revokes_the_tokens(oidc):
    verifier = secrets.token_urlsafe(48)
    code = authorize(oidc, verifier)["code"]
    access_token = exchange(oidc, code, verifier).json()["access_token"]
    assert exchange(oidc, code, verifier).json()["error"] == "invalid_grant"
    revoked = httpx.get(f"{oidc.issuer}/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert revoked.status_code == 401 and 'error="invalid_token"' in revoked.headers["www-authenticate"]


def test_a_redirect_uri_that_differs_is_refused(oidc):
    verifier = secrets.token_urlsafe(48)
    code = authorize(oidc, verifier)["code"]
    assert exchange(oidc, code, verifier, redirect_uri="http://127.0.0.1:1/other/").json()["error"] == "invalid_grant"
    unregistered = httpx.get(
        f"{oidc.issuer}/authorize", params={"client_id": CLIENT_ID, "redirect_uri": "http://evil/"}
    )
    assert unregistered.status_code == 400 and "location" not in unregistered.headers


def test_wrong_client_credentials_are_refused(oidc):
    verifier = secrets.token_urlsafe(48)
    code = authorize(oidc, verifier)["code"]
    refused = exchange(oidc, code, verifier, client_secret="wrong")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"nonce": None}, "invalid_request"),
        ({"scope": "email"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_authorization_requests_missing_what_is_required_are_refused(oidc, overrides, error):
    answer = authorize(oidc, secrets.token_urlsafe(48), **overrides)
    assert answer["error"] == error and "code" not in answer


def test_no_user_at_the_provider_is_access_denied(oidc):
    oidc.user = None
    assert authorize(oidc, secrets.token_urlsafe(48))["error"] == "access_denied"
