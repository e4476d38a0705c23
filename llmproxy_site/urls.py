from django.contrib import admin
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from api.api import api
from api.errors import GatewayError, error_response, invalid_request
from api.metrics_state import scrape_state
from lockout.forms import LockoutAdminAuthenticationForm
from telemetry.views import metrics_view

admin.site.login_form = LockoutAdminAuthenticationForm  # refuses logins after repeated failures (lockout app)


@csrf_exempt  # an API client's POST to a wrong path gets the 404, not a CSRF page
def unknown_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(GatewayError(404, f"Unknown path: {request.method} {request.path}", code="unknown_url"))


urlpatterns = [
    path("admin/sso/", include("sso.urls")),  # single sign-on (sso app; 404 unless LLMPROXY_OIDC_ISSUER is set)
    path("admin/", admin.site.urls),
    path("metrics", metrics_view(scrape_state)),  # Prometheus (telemetry/metrics.py)
    path("", api.urls),
    # Last: any other path outside the admin is an OpenAI-shaped 404, with DEBUG on too (Django's technical 404
    # page is HTML). The admin keeps Django's pages and its redirect of /admin to /admin/.
    re_path(r"^(?!admin(?:/|$))(?P<rest>.*)$", unknown_path),
]


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A request Django refuses before any view (a Host not in ALLOWED_HOSTS, …): OpenAI-shaped outside the admin."""
    if request.path.startswith("/admin/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        return error_response(invalid_request("The Host header names a host this gateway does not serve.",
                                              code="invalid_host"))  # fmt: skip
    return error_response(invalid_request("Bad request.", code="bad_request"))


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An unknown path: OpenAI-shaped outside the admin (with DEBUG off; DEBUG shows Django's technical page)."""
    if request.path.startswith("/admin/"):
        return defaults.page_not_found(request, exception)
    return unknown_path(request)


handler400 = bad_request
handler404 = not_found
