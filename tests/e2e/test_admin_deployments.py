"""The model page of the admin: deployments edited inline, each with its provider, key status and health; fallbacks."""

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
from django.utils import timezone

from routing.health import DeploymentHealth
from routing.models import AllowedModel
from routing.services import create_model
from tests.support.admin_forms import change_model_data
from tests.usage.conftest import redis_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_deployments_are_added_edited_and_removed_on_the_model_page(admin_client, policy, fake_provider):
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    page = admin_client.get(f"/admin/routing/allowedmodel/{model.pk}/change/").content.decode()
    assert 'name="deployments-0-api_base"' in page and "per process: set REDIS_URL to see it here" in page
    backup = {"name": "backup", "litellm_model": "anthropic/claude-sonnet-4-5",
              "api_base": fake_provider.anthropic_base, "priority": 1, "rpm": 60}  # fmt: skip
    data = change_model_data(model, deployments={0: {"weight": 3}}, new_deployments=[backup], fallbacks="capped")
    response = admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    rows = list(model.deployments.values_list("litellm_model", "resolved_provider", "weight", "priority", "rpm"))
    assert rows == [("openai/fake-model", "openai", 3, 0, None), ("anthropic/claude-sonnet-4-5", "anthropic", 1, 1, 60)]
    model.refresh_from_db()
    assert model.fallback_names == ("capped",)

    data = change_model_data(model, deployments={0: {"DELETE": "on"}, 1: {"DELETE": "on"}})
    response = admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", data)
    assert response.status_code == 200 and "Please submit at least 1 form" in response.content.decode()
    response = admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", change_model_data(
        model, deployments={0: {"DELETE": "on"}}))  # fmt: skip
    assert response.status_code == 302
    assert list(model.deployments.values_list("name", flat=True)) == ["backup"]


def test_a_deployments_problem_is_shown_on_its_row(admin_client, policy):
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    data = change_model_data(model, new_deployments=[{"litellm_model": "hosted_vllm/llama"}], fallbacks="nowhere")
    response = admin_client.post(f"/admin/routing/allowedmodel/{model.pk}/change/", data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "needs an API base" in html and "&#x27;nowhere&#x27; is neither an allowed model nor an alias" in html
    assert model.deployments.count() == 1


@pytest.fixture
def shared_health_settings(settings):
    """The admin reads the health that gateway workers share through Redis."""
    url, prefix = redis_url(), f"llmproxy-test-admin-{uuid.uuid4().hex}:"
    settings.REDIS_URL, settings.LLMPROXY_REDIS_PREFIX = url, prefix
    yield {"redis_url": url, "prefix": prefix}
    client = redis.Redis.from_url(url)
    for name in client.scan_iter(match=prefix + "*"):
        client.delete(name)
    client.close()


def health_cells(html: str) -> list[str]:
    rows = html.split('id="deployments-empty"')[0]  # not the blank row "Add another" copies
    return re.findall(r'<td class="field-health">\s*<p>([^<]*)</p>', rows)


def test_each_deployment_shows_its_shared_health(admin_client, shared_health_settings):
    model = create_model("pool", deployments=[{"name": "east", "litellm_model": "openai/a"},
                                              {"name": "west", "litellm_model": "openai/b"},
                                              {"name": "spare", "litellm_model": "openai/c"}])  # fmt: skip
    east, west, _ = model.deployments.all()

    async def fail() -> float | None:  # as a gateway worker records them
        health = DeploymentHealth(**shared_health_settings, failures=3, cooldown_seconds=30)
        await health.record_failure(west.pk, retry_after=None)
        ends = await health.record_failure(east.pk, retry_after=120)
        await health.close()
        return ends

    ends = asyncio.run(fail())
    assert ends is not None and ends > time.time() + 100
    until = timezone.localtime(datetime.fromtimestamp(ends, tz=UTC)).strftime("%H:%M:%S")
    html = admin_client.get(f"/admin/routing/allowedmodel/{model.pk}/change/").content.decode()
    assert health_cells(html) == [f"cooling down until {until}", "healthy (1 recent failure)", "healthy"]


def test_without_redis_the_page_says_health_is_per_process(admin_client, settings):
    settings.REDIS_URL = None
    model = create_model("m", litellm_model="openai/a")
    html = admin_client.get(f"/admin/routing/allowedmodel/{model.pk}/change/").content.decode()
    assert health_cells(html) == ["per process: set REDIS_URL to see it here"]


def test_an_unreachable_redis_leaves_the_page_working(admin_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/15"
    model = create_model("m", litellm_model="openai/a")
    response = admin_client.get(f"/admin/routing/allowedmodel/{model.pk}/change/")
    assert response.status_code == 200
    assert health_cells(response.content.decode())[0].startswith("unknown: Redis did not answer")


def test_a_list_edit_of_a_model_whose_fallback_is_gone_shows_the_problem_instead_of_failing(admin_client):
    create_model("gone", litellm_model="openai/a")
    model = create_model("m", litellm_model="openai/b", fallbacks="gone")
    AllowedModel.objects.filter(name="gone").delete()  # deleted after it was named: the list form lacks the field
    response = admin_client.post(
        "/admin/routing/allowedmodel/",
        {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": model.pk, "form-0-max_tokens": "7",
         "form-0-enabled": "on", "_save": "Save"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "&#x27;gone&#x27; is neither an allowed model nor an alias" in response.content.decode()
    model.refresh_from_db()
    assert model.max_tokens is None
