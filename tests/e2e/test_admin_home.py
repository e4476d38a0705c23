"""The admin's home page (llmproxy_site/admin_site.py): sections in the order operators use them, a first-run panel
on an empty database, and labels that say what they mean."""

import re

import pytest

from routing.services import create_model
from tests.support.admin_users import logged_in, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

SECTIONS = ["Keys and teams", "Models", "Usage", "Audit and security"]


def links(html: str) -> list[str]:
    """The texts of the links in the page's main content, in order."""
    return re.findall(r">([^<>]+)</a>", html.split('id="content-main"', 1)[1])


def in_order(found: list[str], expected: list[str]) -> bool:
    return [text for text in found if text in expected] == expected


def test_the_home_page_leads_with_keys_teams_models_and_usage(admin_client):
    create_model("gpt-4o-mini", litellm_model="openai/gpt-4o-mini")  # past the first run
    found = links(admin_client.get("/admin/").content.decode())
    assert [text for text in found if text in SECTIONS] == SECTIONS
    assert in_order(found, ["Keys and teams", "API keys", "Teams", "Models", "Allowed models", "Model aliases", "Usage",
                            "Usage dashboard", "Request logs", "Budget alerts", "Audit and security", "Log entries",
                            "Failed admin logins", "Users", "Groups"])  # fmt: skip
    assert 'id="section-keys-and-teams"' in admin_client.get("/admin/").content.decode()
    assert admin_client.get("/admin/routing/").status_code == 200  # an app's own page is Django's


def test_a_superuser_on_an_empty_database_gets_the_first_steps(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "Getting started" in html
    for url in ("/admin/routing/allowedmodel/add/", "/admin/keys/apikey/add/", "/admin/routing/allowedmodel/"):
        assert f'href="{url}"' in html
    assert "curl http://testserver/v1/chat/completions -H &#x27;Authorization: Bearer YOUR_LLMPROXY_KEY&#x27;" in html
    assert "Say hello." in html
    create_model("gpt-4o-mini", litellm_model="openai/gpt-4o-mini")
    assert "Getting started" not in admin_client.get("/admin/").content.decode()


def test_a_staff_user_sees_only_the_sections_they_may_use(transactional_db):
    client = logged_in(staff_user("keeper", "keys.view_apikey", "keys.add_apikey"))
    html = client.get("/admin/").content.decode()
    assert [text for text in links(html) if text in SECTIONS] == ["Keys and teams"]
    assert "API keys" in links(html) and "Getting started" not in html


def test_model_fields_say_what_they_mean_with_examples(admin_client):
    html = admin_client.get("/admin/routing/allowedmodel/add/").content.decode()
    for label in ("LiteLLM model", "API base", "Provider key variable", "Timeout (seconds)", "Use LiteLLM"):
        assert label in html, label
    for example in ("e.g. OPENAI_API_KEY", "e.g. openai/gpt-4o", "e.g. https://", "e.g. 60", "e.g. gpt-4o-mini"):
        assert example in html, example
    assert "Litellm model" not in html and "Api base" not in html
