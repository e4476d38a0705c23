"""The admin's login page with SSO: a "Log in with <provider>" button; with LLMPROXY_PASSWORD_LOGIN=0 no password
form, and a POSTed password refused (the password backend is gone from AUTHENTICATION_BACKENDS too)."""

from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse

from sso.backends import sso_enabled


def password_login_enabled() -> bool:
    return not sso_enabled() or settings.LLMPROXY_PASSWORD_LOGIN


def login_context(request: HttpRequest) -> dict:
    if not sso_enabled():
        return {"sso": None, "password_login": True}
    next_url = request.GET.get("next") or reverse("admin:index")
    return {
        "sso": {"provider": settings.LLMPROXY_OIDC_PROVIDER_NAME,
                "url": f"{reverse('oidc_authentication_init')}?{urlencode({'next': next_url})}"},
        "password_login": password_login_enabled(),
    }  # fmt: skip


def refuse_password_post(request: HttpRequest) -> None:
    if request.method == "POST" and not password_login_enabled():
        raise PermissionDenied("Password login is switched off: log in with single sign-on.")
