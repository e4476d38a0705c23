"""The admin in a real browser: Playwright's sync API driving Debian's Chromium (/usr/bin/chromium, headless) against
the live gateway (uvicorn in a thread of this process, tests/conftest.py) with its admin static files collected.

Nothing downloads a browser: `make browser-deps` installs Debian's `chromium` (`make test` runs it in CI). Without
it these tests skip with the reason, except in CI (`CI` set), where they fail.

Playwright's sync API and Django's ORM in one thread: between two Playwright calls the test's thread has Playwright's
event loop marked as running (playwright/_impl/_greenlets.py, `wait_for_future`), so Django's sync ORM raises
SynchronousOnlyOperation in the test and in pytest-django's own flush after it. Doing the ORM work before the first
page is not enough: the browser lives for the whole package, and the flush runs after each test. So
DJANGO_ALLOW_ASYNC_UNSAFE is set while this package runs and restored after it, together with the browser's end
(package scope): the tests of other packages keep Django's check, and the gateway's hot path is checked there.
"""

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
VIEWPORT = {"width": 1280, "height": 860}


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where `make test` installs what is missing."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests: `make browser-deps`)", pytrace=False)
    pytest.skip(f"{reason}: `make browser-deps` installs Debian's chromium")


@pytest.fixture(scope="package")
def browser() -> Iterator["Browser"]:
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Screenshots:
    """Numbered screenshots of one test's steps: test-artifacts/browser/<test>/<nn>-<step>.png."""

    taken_this_session = False  # the summary names the directory only then

    def __init__(self, directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.directory = directory
        self.taken = 0

    def __call__(self, page: "Page", step: str) -> Path:
        self.taken += 1
        Screenshots.taken_this_session = True
        path = self.directory / f"{self.taken:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(ARTIFACTS / re.sub(r"[^\w.-]+", "-", request.node.name))


@pytest.fixture
def new_page(browser: "Browser", gateway_url: str) -> Iterator[Callable[[], "Page"]]:
    """Pages of their own browser contexts (separate cookies: one per user), closed after the test."""
    contexts = []

    def open_page() -> "Page":
        context = browser.new_context(base_url=gateway_url, viewport=VIEWPORT)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], "Page"]) -> "Page":
    return new_page()


@pytest.fixture
def superuser():
    from django.contrib.auth import get_user_model

    from tests.support.admin_users import PASSWORD

    return get_user_model().objects.create_superuser("platform", "platform@example.com", PASSWORD)


@pytest.fixture
def house(transactional_db, superuser, fake_provider) -> dict:
    """What test_platform_admin.py builds in the browser: a model capped at 7 tokens on the fake provider, its alias
    `house`, the team `alpha` with its admin `ada` (staff, not a superuser), and the platform admin."""
    from django.contrib.auth import get_user_model

    from routing.models import ModelAlias
    from routing.services import create_model
    from teams.services import add_team_member, create_team
    from tests.support.admin_users import PASSWORD

    model = create_model("house-model", litellm_model="openai/fake-model", api_base=fake_provider.openai_base,
                         max_tokens=7)  # fmt: skip
    ModelAlias.objects.create(alias="house", target=model)
    team = create_team(name="alpha", rpm_limit=600)
    ada = get_user_model().objects.create_user("ada", "ada@example.com", PASSWORD)
    add_team_member(team=team, user=ada, role="admin")
    return {"model": model, "team": team, "team_admin": ada, "superuser": superuser}


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if Screenshots.taken_this_session:
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS.relative_to(REPO_ROOT)}/<test>/<nn-step>.png")
