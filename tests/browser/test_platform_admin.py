"""A platform admin (a superuser) sets llmproxy up in a browser, no shell: the home page on an empty database, a model
pointed at the fake provider with a cap, "Send a test request" and its answer, an alias, a user and a team with
that user as its admin. What the team admin then does: test_team_admin.py."""

import pytest
from playwright.sync_api import Page, expect

from routing.models import AllowedModel, ModelAlias
from teams.models import Membership, Role
from tests.browser.admin_pages import choose_autocomplete, log_in, save, section_names
from tests.support.admin_users import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

SECTIONS = ["Keys and teams", "Models", "Usage", "Audit and security"]


def assert_styled(page: Page) -> None:
    """The admin's stylesheet was served (servestatic from STATIC_ROOT) and applied: its colour variables exist and
    the header has its background (an unstyled page has neither)."""
    stylesheet = page.request.get("/static/admin/css/base.css")
    assert stylesheet.status == 200 and "text/css" in stylesheet.headers["content-type"]
    header = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header not in ("rgba(0, 0, 0, 0)", "transparent"), header
    assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--header-bg')").strip()


def test_a_platform_admin_adds_a_model_tests_it_and_adds_an_alias_and_a_team(page, screenshots, superuser,
                                                                            fake_provider):  # fmt: skip
    page.goto("/admin/")
    expect(page.locator("#login-form")).to_be_visible()
    assert_styled(page)
    screenshots(page, "login")
    log_in(page, "platform", PASSWORD)
    assert_styled(page)
    assert section_names(page) == SECTIONS
    expect(page.locator("#first-run")).to_contain_text("Add a model")
    expect(page.locator("#first-run-curl")).to_contain_text("/v1/chat/completions")
    screenshots(page, "home-first-run")

    page.click("#first-run a:text-is('Add a model')")
    page.fill("#id_name", "house-model")
    page.fill("#id_max_tokens", "7")
    page.fill("input[name='deployments-0-litellm_model']", "openai/fake-model")
    page.fill("input[name='deployments-0-api_base']", fake_provider.openai_base)
    screenshots(page, "add-model")
    save(page, "_continue")
    expect(page.locator(".messagelist .success")).to_contain_text("house-model")
    model = AllowedModel.objects.get(name="house-model")
    assert model.max_tokens == 7 and model.deployments.get().api_base == fake_provider.openai_base

    page.click("#admin-test-request [type=submit]")
    expect(page.locator("#test-answer")).to_have_text("Hello! You said: Say hello.")
    expect(page.locator("#test-result")).to_contain_text("200 OK")
    screenshots(page, "test-request-answer")
    assert fake_provider.last_request.body["max_tokens"] == 7  # the model's cap, on the caller's path

    page.goto("/admin/routing/modelalias/add/")
    page.fill("#id_alias", "house")
    choose_autocomplete(page, "target", "house", "house-model")
    screenshots(page, "add-alias")
    save(page)
    assert ModelAlias.objects.get(alias="house").target == model

    page.goto("/admin/auth/user/add/")
    page.fill("#id_username", "ada")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    save(page, "_continue")
    expect(page.locator(".messagelist .success")).to_contain_text("ada")

    page.goto("/admin/teams/team/add/")
    page.fill("#id_name", "alpha")
    page.fill("#id_rpm_limit", "600")
    page.click(".inline-group .add-row a")
    choose_autocomplete(page, "memberships-0-user", "ada", "ada")
    page.select_option("select[name='memberships-0-role']", "admin")
    screenshots(page, "add-team")
    save(page)
    expect(page.locator("#result_list")).to_contain_text("alpha")
    membership = Membership.objects.select_related("user", "team").get()
    assert (membership.team.name, membership.user.username, membership.role) == ("alpha", "ada", Role.ADMIN)
    assert membership.user.is_staff and not membership.user.is_superuser  # made staff by the membership

    page.goto("/admin/")
    expect(page.locator("#first-run")).to_have_count(0)  # a model exists: the walk-through is done
    screenshots(page, "home")
