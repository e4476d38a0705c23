"""The provider's endpoints, from its discovery document (OpenID Connect Discovery 1.0, section 4).

Fetched once per issuer on the first SSO login (never at start-up, never on the API path) and kept for the
process's life; a failed fetch is not cached, so the next login tries again.
"""

import threading

import requests
from django.conf import settings

# mozilla-django-oidc's setting name -> the discovery document's field.
ENDPOINT_FIELDS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
REQUIRED_FIELDS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")

_documents: dict[str, dict] = {}
_lock = threading.Lock()


class DiscoveryError(Exception):
    pass


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def provider_metadata(issuer: str | None = None) -> dict:
    issuer = issuer or settings.LLMPROXY_OIDC_ISSUER
    document = _documents.get(issuer)
    if document is None:
        with _lock:
            document = _documents.get(issuer) or fetch_metadata(issuer)
            _documents[issuer] = document
    return document


def fetch_metadata(issuer: str) -> dict:
    try:
        response = requests.get(discovery_url(issuer), timeout=getattr(settings, "OIDC_TIMEOUT", 10))
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise DiscoveryError(f"the discovery document at {discovery_url(issuer)} could not be read: {error}") from None
    missing = [name for name in REQUIRED_FIELDS if not document.get(name)]
    if missing:
        raise DiscoveryError(f"the discovery document lacks {', '.join(missing)}")
    if document["issuer"].rstrip("/") != issuer.rstrip("/"):  # Discovery 1.0, 4.3: must be identical
        raise DiscoveryError(f"the discovery document names issuer {document['issuer']!r}, not {issuer!r}")
    return document


def endpoint(setting_name: str) -> str | None:
    return provider_metadata().get(ENDPOINT_FIELDS[setting_name])


def forget_metadata() -> None:
    """Drop the cached documents (tests; a provider that moved its endpoints needs a restart otherwise)."""
    with _lock:
        _documents.clear()
