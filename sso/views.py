"""The two steps of an SSO login, as mozilla-django-oidc runs them, under /admin/sso/ (404 while SSO is off).

login/: stores state, nonce and the PKCE verifier in the session and sends the browser to the provider's
authorization endpoint (read from its discovery document) with the S256 code challenge.
callback/: exchanges the code (with the verifier) and logs the user in (sso/backends.py); on failure, back to the
admin's login page, which shows why.
"""

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from sso.backends import oidc_setting, sso_enabled
from sso.discovery import DiscoveryError


class SsoLoginView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)

    def dispatch(self, request, *args, **kwargs):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().dispatch(request, *args, **kwargs)
        except DiscoveryError:
            messages.error(request, "Single sign-on is unavailable: the provider could not be reached.")
            return HttpResponseRedirect(reverse("admin:login"))

    def __init__(self, *args, **kwargs) -> None:
        # Not the library's __init__: it reads the settings before dispatch() could answer 404 with SSO off.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:  # the library's attribute names
        return oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return oidc_setting("OIDC_RP_CLIENT_ID")


class SsoCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    def dispatch(self, request, *args, **kwargs):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return super().dispatch(request, *args, **kwargs)

    @property
    def failure_url(self) -> str:
        return reverse("admin:login")

    @property
    def success_url(self) -> str:
        return self.request.session.get("oidc_login_next") or reverse("admin:index")

    def login_failure(self):
        if self.request.GET.get("error"):  # the provider refused (RFC 6749, 4.1.2.1)
            messages.error(self.request, f"The provider refused the login: {self.request.GET['error']}.")
        return super().login_failure()
