"""Production settings: `check --deploy` is clean; cookies are Secure and HSTS is sent over HTTPS."""

import json
import os
import secrets
import subprocess
import sys
import textwrap

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import REPO_ROOT, database_url_for_subprocess

PRODUCTION_ENV_OVERRIDES = (
    "DJANGO_DEBUG",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_HSTS_PRELOAD",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_PROXY_SSL_HEADER",
    "DJANGO_SETTINGS_MODULE",
)


def production_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in PRODUCTION_ENV_OVERRIDES}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "llmproxy_site.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60)[:60],
        **extra,
    }


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ssl_redirect", ["0", "1"])
def test_check_deploy_is_clean_with_production_settings(tmp_path, ssl_redirect):
    env = production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DJANGO_SECURE_SSL_REDIRECT=ssl_redirect)
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr


COOKIE_PROBE = textwrap.dedent(
    """
    import json, django
    django.setup()
    from django.test import Client

    def hsts(response):
        return response.headers.get("Strict-Transport-Security")

    client = Client(HTTP_HOST="localhost")
    login = client.post("/admin/login/", {"username": "ops", "password": "correct-horse-battery-staple-42"},
                        secure=True)
    session, csrf = login.cookies["sessionid"], login.cookies["csrftoken"]
    proxied = Client(HTTP_HOST="localhost").get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    plain = Client(HTTP_HOST="localhost").get("/admin/login/")
    print(json.dumps({
        "login_status": login.status_code,
        "session_secure": bool(session["secure"]), "session_httponly": bool(session["httponly"]),
        "csrf_secure": bool(csrf["secure"]),
        "hsts_https": hsts(login), "hsts_proxied": hsts(proxied), "hsts_plain_http": hsts(plain),
        "nosniff": login.headers.get("X-Content-Type-Options"), "frame": plain.headers.get("X-Frame-Options"),
    }))
    """
)


@pytest.mark.django_db(transaction=True)
def test_secure_cookies_and_hsts_over_https():
    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct-horse-battery-staple-42")
    env = production_env(DATABASE_URL=database_url_for_subprocess(), DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    result = run_python(["-c", COOKIE_PROBE], env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["login_status"] == 302
    assert seen["session_secure"] and seen["session_httponly"] and seen["csrf_secure"]
    assert seen["hsts_https"] == "max-age=31536000; includeSubDomains"
    assert seen["hsts_proxied"] == seen["hsts_https"]  # a TLS-terminating proxy's X-Forwarded-Proto is trusted
    assert seen["hsts_plain_http"] is None  # never on plain http (make serve, the benchmark)
    assert seen["nosniff"] == "nosniff" and seen["frame"] == "DENY"
