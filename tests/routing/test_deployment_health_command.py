"""`manage.py deployment_health`: every deployment with what the gateway knows of its health."""

import asyncio
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError

from routing.health import DeploymentHealth
from tests.usage.conftest import redis_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deployments() -> dict[str, int]:
    """gpt-4o on two deployments (east first), claude on one, and an alias."""
    from routing.models import ModelAlias
    from routing.services import create_model

    gpt = create_model(
        "gpt-4o",
        deployments=[
            {"name": "east", "litellm_model": "openai/gpt-4o", "api_base": "http://east.test/v1", "weight": 3},
            {"name": "west", "litellm_model": "openai/gpt-4o-2024", "api_base": "http://west.test/v1", "priority": 1},
        ],
    )
    claude = create_model("claude", litellm_model="anthropic/claude-sonnet-4-5")
    ModelAlias.objects.create(alias="fast", target=gpt)
    ids = {d.name: d.pk for d in gpt.deployments.all()}
    ids["claude"] = claude.deployments.get().pk
    return ids


@pytest.fixture
def shared_health(settings) -> Iterator[DeploymentHealth]:
    settings.REDIS_URL = redis_url()
    settings.LLMPROXY_REDIS_PREFIX = f"llmproxy-test-health-{uuid.uuid4().hex}:"
    health = DeploymentHealth(redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX)
    yield health
    health.reset()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("deployment_health", *args, stdout=out)
    return out.getvalue()


def table(output: str) -> list[list[str]]:
    lines = [line for line in output.splitlines() if "  " in line]
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


def fail(health: DeploymentHealth, deployment_id: int, *, times: int = 1, retry_after: float | None = None) -> float:
    async def failures() -> float | None:
        ends = None
        for _ in range(times):
            ends = await health.record_failure(deployment_id, retry_after=retry_after)
        await health.close()
        return ends

    return asyncio.run(failures())


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def test_with_redis_each_deployment_shows_its_shared_health(deployments, shared_health):
    ends = fail(shared_health, deployments["east"], retry_after=120)
    fail(shared_health, deployments["west"], times=2)
    output = run()
    assert "REDIS_URL is not set" not in output
    assert table(output) == [
        ["MODEL", "DEPLOYMENT", "LITELLM MODEL", "PRIORITY", "WEIGHT", "ENABLED", "HEALTH"],
        ["claude", f"claude#{deployments['claude']}", "anthropic/claude-sonnet-4-5", "0", "1", "yes", "healthy"],
        ["gpt-4o", "east", "openai/gpt-4o", "0", "3", "yes", f"cooling down until {iso(ends)} (in 120 s)"],
        ["gpt-4o", "west", "openai/gpt-4o-2024", "1", "1", "yes", "healthy, 2 recent failures"],
    ]


def test_json_and_the_model_filter(deployments, shared_health):
    ends = fail(shared_health, deployments["east"], retry_after=60)
    report = json.loads(run("--model", "fast", "--json"))  # an alias names its model
    assert (report["shared"], report["note"], report["error"]) == (True, None, None)
    east, west = report["deployments"]
    assert east == {
        "id": deployments["east"],
        "model": "gpt-4o",
        "deployment": "east",
        "litellm_model": "openai/gpt-4o",
        "priority": 0,
        "weight": 3,
        "enabled": True,
        "status": "cooling_down",
        "cooling_until": iso(ends),
        "recent_failures": 0,
        "health": f"cooling down until {iso(ends)} (in 60 s)",
    }
    assert (west["deployment"], west["status"], west["cooling_until"]) == ("west", "healthy", None)
    assert [row[1] for row in table(run("--model", "claude"))[1:]] == [f"claude#{deployments['claude']}"]
    with pytest.raises(CommandError, match="'nope'"):
        run("--model", "nope")


def test_an_ended_cooldown_shows_healthy(deployments, shared_health):
    fail(shared_health, deployments["west"], retry_after=0.2)
    deadline = time.monotonic() + 5
    while "cooling down" in run("--model", "gpt-4o"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert table(run("--model", "gpt-4o"))[2][-1] == "healthy"


def test_without_redis_it_says_health_is_per_process(deployments, settings):
    settings.REDIS_URL = None
    output = run()
    assert output.splitlines()[0].startswith("REDIS_URL is not set: each gateway process keeps its own")
    assert "Only REDIS_URL makes cooldowns shared by every worker and host" in output
    rows = table(output)[1:]
    assert [row[1] for row in rows] == [f"claude#{deployments['claude']}", "east", "west"]
    assert {row[-1] for row in rows} == {"unknown (each process keeps its own)"}
    report = json.loads(run("--json"))
    assert report["shared"] is False and report["note"].startswith("REDIS_URL is not set")
    assert {row["status"] for row in report["deployments"]} == {"unknown"}


def test_an_unreachable_redis_is_an_error_after_the_list(deployments, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/15"
    out = io.StringIO()
    with pytest.raises(CommandError, match="Deployment health is unknown: Redis did not answer"):
        call_command("deployment_health", stdout=out)
    assert {row[-1] for row in table(out.getvalue())[1:]} == {"unknown (Redis did not answer)"}


def test_as_an_operator_runs_it(deployments, shared_health, settings, manage_py, monkeypatch):
    ends = fail(shared_health, deployments["claude"], times=3)
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("LLMPROXY_REDIS_PREFIX", settings.LLMPROXY_REDIS_PREFIX)
    output = manage_py("deployment_health", "--model", "claude").stdout
    assert table(output)[1][-1].startswith(f"cooling down until {iso(ends)}")
    assert redis.Redis.from_url(redis_url()).exists(settings.LLMPROXY_REDIS_PREFIX + "deployment-cooldowns")
