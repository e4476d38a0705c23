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
def live_gateway(django_db_setup, django_db_blocker) -> Iterator[LiveGateway]:
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
