import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import openai
import pytest

if TYPE_CHECKING:
    from tests.support.fake_oidc import FakeOidcProvider
    from tests.support.fake_provider import FakeProvider

from tests.support.live_server import LiveGateway

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator["FakeProvider"]:
    from tests.support.fake_provider import FakeProvider

    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def fake_provider(fake_provider_server: "FakeProvider") -> "FakeProvider":
    fake_provider_server.reset()
    fake_provider_server.chunk_delay = 0.0
    fake_provider_server.stream_chunks = None
    return fake_provider_server


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The admin's static files, collected as `make run` does, into a directory of this session: servestatic
    (llmproxy_site/asgi.py) reads STATIC_ROOT once, when the live gateway imports it, so a browser sees a styled
    admin (tests/browser)."""
    from django.core.management import call_command
    from django.test import override_settings

    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=str(root)):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.fixture(scope="session")
def live_gateway(django_db_setup, django_db_blocker, static_root: Path) -> Iterator[LiveGateway]:
    server = LiveGateway().start()
    yield server
    server.stop()
    from django.db import connections

    for connection in connections.all():  # the server's pooled connections would block dropping the test DB
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.fixture
def gateway_url(live_gateway: LiveGateway, transactional_db) -> Iterator[str]:
    from api.gateway import gateway

    gateway.reset()
    yield live_gateway.url
    time.sleep(0.05)  # let the last answers be accounted for
    gateway.drain_threadsafe()  # write buffered usage rows while this test's database is still there


@pytest.fixture(scope="session")
def fake_oidc_server(live_gateway: LiveGateway) -> Iterator["FakeOidcProvider"]:
    from tests.support.fake_oidc import FakeOidcProvider
    from tests.support.oidc_login import CALLBACK_PATH

    with FakeOidcProvider(redirect_uris=[live_gateway.url + CALLBACK_PATH]) as provider:
        yield provider


@pytest.fixture
def oidc_provider(fake_oidc_server: "FakeOidcProvider", gateway_url: str) -> Iterator["FakeOidcProvider"]:
    """The fake OIDC provider (tests/support/fake_oidc.py) with the live gateway's SSO pointed at it, password login
    on; set `oidc_provider.user`, then log in (tests/support/oidc_login.py: sso_login, or a browser)."""
    from tests.support.oidc_login import sso_configured

    fake_oidc_server.reset()
    with sso_configured(fake_oidc_server):
        yield fake_oidc_server


@pytest.fixture
def policy(transactional_db, fake_provider: "FakeProvider") -> dict:
    """A typical team policy pointed at the fake provider."""
    from routing.models import ModelAlias
    from routing.services import create_model

    gpt = create_model("gpt-4o-mini", litellm_model="openai/fake-model", api_base=fake_provider.openai_base)
    create_model("capped", litellm_model="openai/fake-capped", api_base=fake_provider.openai_base, max_tokens=5)
    create_model("claude-3-5-sonnet-20241022", api_base=fake_provider.anthropic_base, max_tokens=50)
    create_model("disabled-model", litellm_model="openai/fake-off", api_base=fake_provider.openai_base, enabled=False)
    ModelAlias.objects.create(alias="fast", target=gpt)
    return {"default": "gpt-4o-mini"}


@pytest.fixture
def api_key(transactional_db) -> str:
    from keys.services import create_api_key

    return create_api_key(name="test-app").plaintext


@pytest.fixture
def openai_client(gateway_url: str, api_key: str, policy: dict) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0, timeout=20)


@pytest.fixture
def async_openai_client(gateway_url: str, api_key: str, policy: dict) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0, timeout=20)


def database_url_for_subprocess() -> str:
    from django.db import connection

    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def manage_py(transactional_db):
    """Run `python manage.py …` as a user would, against the test database."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "DJANGO_SETTINGS_MODULE": "tests.settings"}
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed: {result.stderr}")
        return result

    return run


# With pytest-xdist (make test runs `-n 2 --dist loadgroup`), tests that share a machine-wide resource run in one
# worker: the operations tests' network namespaces and bridge, and one Chromium for the browser tests.
XDIST_GROUPS = {"operations": "operations", "browser": "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).resolve().parent
    for item in items:
        relative = item.path.resolve().relative_to(tests_root)
        group = XDIST_GROUPS.get(relative.parts[0]) if len(relative.parts) > 1 else None
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
