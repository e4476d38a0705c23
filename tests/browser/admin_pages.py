"""What a person does in the admin with a browser, in Playwright's words; and the `openai` SDK a caller uses."""

import time
from collections.abc import Callable

import openai
from playwright.sync_api import Page, expect

HELLO = [{"role": "user", "content": "Hello"}]


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    expect(page.locator("#site-name")).to_have_text("llmproxy administration")
    expect(page.locator("#user-tools")).to_contain_text(username)


def save(page: Page, button: str = "_save") -> None:
    page.click(f"input[name={button}]")
    expect(page.locator(".errornote")).to_have_count(0)


def choose_autocomplete(page: Page, select_name: str, typed: str, shown: str) -> None:
    """A select2 field (the admin's autocomplete_fields): open it, type, pick the shown choice."""
    page.click(f"select[name='{select_name}'] + .select2 .select2-selection")
    page.fill(".select2-container--open .select2-search__field", typed)
    page.click(f".select2-results__option:text-is('{shown}')")
    expect(page.locator(f"select[name='{select_name}'] option:checked")).to_have_text(shown)


def section_names(page: Page) -> list[str]:
    """The home page's sections, top to bottom."""
    return [name.strip() for name in page.locator("#content-main .module caption").all_text_contents()]


def sdk(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20)


def until(condition: Callable[[], object], *, seconds: float, what: str) -> object:
    """Poll `condition` until it returns something truthy; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.02)
