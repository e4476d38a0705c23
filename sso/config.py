"""Single sign-on settings, read from the environment only (README: Single sign-on).

`sso_settings(environ)` is the one reader: settings.py calls it with os.environ, and the tests call it with the
environment they want (tests/support/fake_oidc.py), so a test configures the gateway exactly as an operator does.
With no issuer set, SSO is off and the settings are Django's defaults: password login as before.
"""

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"
OIDC_BACKEND = "sso.backends.OidcBackend"
TRUE = {"1", "true", "yes", "on"}


def split_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def sso_settings(environ: Mapping[str, str]) -> dict:
    """The Django settings single sign-on needs (mozilla-django-oidc's OIDC_* names and ours)."""
    issuer = environ.get("LLMPROXY_OIDC_ISSUER", "").strip().rstrip("/")
    password_login = environ.get("LLMPROXY_PASSWORD_LOGIN", "1").strip().lower() in TRUE
    if not issuer:
        return {"LLMPROXY_OIDC_ISSUER": "", "LLMPROXY_PASSWORD_LOGIN": True,
                "AUTHENTICATION_BACKENDS": [PASSWORD_BACKEND]}  # fmt: skip
    if not environ.get("LLMPROXY_OIDC_CLIENT_ID", "").strip():
        raise ImproperlyConfigured("LLMPROXY_OIDC_ISSUER is set: set LLMPROXY_OIDC_CLIENT_ID too.")
    scopes = environ.get("LLMPROXY_OIDC_SCOPES", "").replace(",", " ").split() or ["openid", "email", "profile"]
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    return {
        "LLMPROXY_OIDC_ISSUER": issuer,
        "LLMPROXY_OIDC_PROVIDER_NAME": environ.get("LLMPROXY_OIDC_PROVIDER_NAME", "").strip() or "single sign-on",
        "LLMPROXY_OIDC_USERNAME_CLAIM": environ.get("LLMPROXY_OIDC_USERNAME_CLAIM", "").strip() or "preferred_username",
        "LLMPROXY_OIDC_GROUPS_CLAIM": environ.get("LLMPROXY_OIDC_GROUPS_CLAIM", "").strip() or "groups",
        "LLMPROXY_OIDC_STAFF_GROUPS": split_list(environ.get("LLMPROXY_OIDC_STAFF_GROUPS", "llmproxy:staff")),
        "LLMPROXY_OIDC_SUPERUSER_GROUPS": split_list(
            environ.get("LLMPROXY_OIDC_SUPERUSER_GROUPS", "llmproxy:superuser")
        ),
        "LLMPROXY_OIDC_TEAM_GROUP_PREFIX": environ.get("LLMPROXY_OIDC_TEAM_GROUP_PREFIX", "llmproxy:team:"),
        "LLMPROXY_PASSWORD_LOGIN": password_login,
        # Password login off: the password backend is gone too, so no view can log a password in.
        "AUTHENTICATION_BACKENDS": [PASSWORD_BACKEND, OIDC_BACKEND] if password_login else [OIDC_BACKEND],
        # mozilla-django-oidc's own settings; the endpoints come from the discovery document (sso/discovery.py).
        "OIDC_RP_CLIENT_ID": environ["LLMPROXY_OIDC_CLIENT_ID"].strip(),
        "OIDC_RP_CLIENT_SECRET": environ.get("LLMPROXY_OIDC_CLIENT_SECRET", ""),
        "OIDC_RP_SCOPES": " ".join(scopes),
        "OIDC_RP_SIGN_ALGO": environ.get("LLMPROXY_OIDC_SIGN_ALGO", "RS256").strip() or "RS256",
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_TIMEOUT": float(environ.get("LLMPROXY_OIDC_TIMEOUT_SECONDS", "10")),
        "OIDC_CREATE_USER": True,
        "OIDC_STORE_ID_TOKEN": False,
        "OIDC_STORE_ACCESS_TOKEN": False,
    }
