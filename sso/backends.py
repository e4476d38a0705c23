"""mozilla-django-oidc's backend, made strict and lazy.

- Endpoints come from the discovery document on the first login (sso/discovery.py), so settings need only the
  issuer, and a password login or a session check never touches the provider.
- The ID token is checked fully (OpenID Connect Core 1.0, 3.1.3.7): signature with the provider's JWKS key,
  `alg` as configured, `iss` = the issuer, `aud` = our client id, `exp`, `iat` and `nonce` present and valid.
  The library itself skips the audience and issuer checks.
- Users are matched on (issuer, sub) and their roles set from the claims on every login (sso/services.py).
- Any failure (provider down, code refused, bad token, no admin role) is a refused login with a message on the
  login page, never a 500.
"""

import logging

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from sso import discovery
from sso.roles import RoleMapping, roles_from_claims
from sso.services import SignInRefused, sync_sso_user

logger = logging.getLogger(__name__)
LEEWAY_SECONDS = 60
REQUIRED_ID_TOKEN_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]


def sso_enabled() -> bool:
    return bool(getattr(settings, "LLMPROXY_OIDC_ISSUER", ""))


def oidc_setting(name: str, *default):
    """mozilla-django-oidc's settings, with the provider's endpoints read from its discovery document."""
    if name in discovery.ENDPOINT_FIELDS:
        return discovery.endpoint(name)
    return import_from_settings(name, *default)


def role_mapping() -> RoleMapping:
    return RoleMapping(
        groups_claim=settings.LLMPROXY_OIDC_GROUPS_CLAIM,
        staff_groups=frozenset(settings.LLMPROXY_OIDC_STAFF_GROUPS),
        superuser_groups=frozenset(settings.LLMPROXY_OIDC_SUPERUSER_GROUPS),
        team_prefix=settings.LLMPROXY_OIDC_TEAM_GROUP_PREFIX,
    )


class OidcBackend(OIDCAuthenticationBackend):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs) -> None:
        # Not the library's __init__: it reads the endpoints, and Django builds backends for every password login
        # and every session check. The endpoints are properties below, read when a login needs them.
        self.OIDC_RP_CLIENT_ID = import_from_settings("OIDC_RP_CLIENT_ID", "")
        self.OIDC_RP_CLIENT_SECRET = import_from_settings("OIDC_RP_CLIENT_SECRET", "")
        self.OIDC_RP_SIGN_ALGO = import_from_settings("OIDC_RP_SIGN_ALGO", "RS256")
        self.OIDC_RP_IDP_SIGN_KEY = None  # always the provider's JWKS
        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: discovery.endpoint("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: discovery.endpoint("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: discovery.endpoint("OIDC_OP_JWKS_ENDPOINT"))

    def authenticate(self, request, **kwargs):
        # Only the SSO callback passes `nonce` (sso/views.py): a password form's credentials never reach the
        # provider, and a crafted ?code= on another page does nothing.
        if request is None or not sso_enabled() or "nonce" not in kwargs or "password" in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except SignInRefused as refusal:
            messages.error(request, str(refusal))
        except (discovery.DiscoveryError, requests.RequestException, SuspiciousOperation, jwt.PyJWTError) as error:
            logger.warning("single sign-on failed: %s", error)
            messages.error(request, "Single sign-on failed: the provider's answer was refused. Try again, or ask an "
                           "administrator to check the gateway's log.")  # fmt: skip
        return None

    def get_payload_data(self, token, key) -> dict:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(f"ID token signed with {header.get('alg')!r}, not {self.OIDC_RP_SIGN_ALGO!r}")
        return jwt.decode(
            token,
            key,
            algorithms=[self.OIDC_RP_SIGN_ALGO],
            audience=self.OIDC_RP_CLIENT_ID,
            issuer=discovery.provider_metadata()["issuer"],
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_ID_TOKEN_CLAIMS},
        )

    def verify_token(self, token, **kwargs) -> dict:
        if kwargs.get("nonce") is None:
            raise SuspiciousOperation("no nonce was sent for this login")
        return super().verify_token(token, **kwargs)

    def get_userinfo(self, access_token, id_token, payload) -> dict:
        """The ID token's claims, completed by the userinfo endpoint's when the provider has one."""
        if not self.OIDC_OP_USER_ENDPOINT:
            return dict(payload)
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):  # Core 1.0, 5.3.2: must match, or the answer is not used
            raise SuspiciousOperation("the userinfo answer is for another subject")
        return {**userinfo, **payload}

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        roles = roles_from_claims(claims, role_mapping())
        user = sync_sso_user(issuer=settings.LLMPROXY_OIDC_ISSUER, claims=claims, roles=roles,
                             username_claim=settings.LLMPROXY_OIDC_USERNAME_CLAIM)  # fmt: skip
        if user is None or not roles.grants_admin:
            raise SignInRefused(
                "Your single sign-on account has no admin role here: ask for a staff, superuser or team group "
                f"(groups read from the '{settings.LLMPROXY_OIDC_GROUPS_CLAIM}' claim)."
            )
        return user

    def get_user(self, user_id):
        if not sso_enabled():
            return None
        return super().get_user(user_id)
