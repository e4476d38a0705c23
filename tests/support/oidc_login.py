"""The gateway configured for the fake OIDC provider, and an SSO login driven over HTTP as a browser does it.

    with oidc_gateway(gateway_url) as provider:        # or the `oidc_provider` fixture (tests/conftest.py)
        provider.user = OidcUser(sub="u-1", email="ada@example.com", groups=["llmproxy:superuser"])
        client = browser_like_client(gateway_url)
        page = sso_login(client, gateway_url)            # the page the login ends on (the admin index when it worked)

The configuration goes through sso.config.sso_settings with the provider's environment, exactly what an operator's
LLMPROXY_OIDC_* variables produce; the live gateway runs in this process, so the override reaches it.
"""

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from urllib.parse import urljoin

import httpx

from tests.support.fake_oidc import FakeOidcProvider

CALLBACK_PATH = "/admin/sso/callback/"
LOGIN_PATH = "/admin/sso/login/"


@contextmanager
def sso_configured(provider: FakeOidcProvider, **environ: str) -> Iterator[FakeOidcProvider]:
    """Settings as the environment `provider.environ(**environ)` gives them (e.g. LLMPROXY_PASSWORD_LOGIN="0")."""
    from django.test import override_settings

    from sso.config import sso_settings
    from sso.discovery import forget_metadata

    forget_metadata()
    try:
        with override_settings(**sso_settings(provider.environ(**environ))):
            yield provider
    finally:
        forget_metadata()


@contextmanager
def oidc_gateway(gateway_url: str, **environ: str) -> Iterator[FakeOidcProvider]:
    """A fake provider that knows the gateway's callback, and the gateway configured for it."""
    with FakeOidcProvider(redirect_uris=[gateway_url + CALLBACK_PATH]) as provider, sso_configured(provider, **environ):
        yield provider


class LoopbackCookies:
    """Cookies kept as a browser keeps them for http://127.0.0.1, the `Secure` ones included (a browser treats
    loopback as a secure context; the gateway marks its cookies Secure unless DEBUG). httpx's own jar would drop them:
    it copies cookies into a jar with the default policy for every request."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def send(self, request: httpx.Request) -> None:
        if self.values:
            request.headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.values.items())

    def keep(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel.value and morsel["max-age"] != "0":
                    self.values[name] = morsel.value
                else:
                    self.values.pop(name, None)


def browser_like_client(base_url: str) -> httpx.Client:
    cookies = LoopbackCookies()
    return httpx.Client(base_url=base_url, follow_redirects=False, timeout=20,
                        event_hooks={"request": [cookies.send], "response": [cookies.keep]})  # fmt: skip


def follow(client: httpx.Client, response: httpx.Response, *, rewrite: Callable[[str], str] = lambda url: url,
           limit: int = 10) -> httpx.Response:  # fmt: skip
    """Follow redirects across the gateway and the provider; `rewrite` may change each URL before it is visited
    (a test's way to tamper with what the browser carries)."""
    for _ in range(limit):
        if not response.is_redirect:
            return response
        url = rewrite(urljoin(str(response.url), response.headers["location"]))
        response = client.get(url)
    raise AssertionError("too many redirects")


def sso_login(client: httpx.Client, gateway_url: str, *, next_url: str = "/admin/",
              rewrite: Callable[[str], str] = lambda url: url) -> httpx.Response:  # fmt: skip
    """Press "Log in with …" on the admin's login page and follow the flow to the page it ends on."""
    page = client.get("/admin/login/", params={"next": next_url})
    assert page.status_code == 200, page.text
    button = re.search(r'id="sso-login-button" href="([^"]+)"', page.text)
    assert button, "the login page offers no single sign-on"
    return follow(client, client.get(html.unescape(button.group(1))), rewrite=rewrite)
