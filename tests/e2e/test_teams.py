"""Teams through the live gateway, as an app sees them with the official `openai` SDK: a key's models ∩ its team's,
a team budget shared by the team's keys, rotation with a grace period, team edits reaching the gateway, and a warm
team key costing no database query. Team rate limits and budget alerts: test_teams_limits.py."""

import re
import time
from datetime import timedelta
from decimal import Decimal

import openai
import pytest
from django.utils import timezone

from tests.e2e.test_hot_path import BATCH_TRANSACTION, QueryCounter
from tests.support.request_log import logged_rows
from tests.usage.conftest import limit_backend  # noqa: F401  (a fixture: the counter store, database or Redis)

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]


def make_team(name: str, **fields):
    from teams.services import create_team

    return create_team(name=name, **fields)


def usd(amount: float) -> Decimal:
    return Decimal(f"{amount:.6f}")


def team_key(name: str, team, **fields) -> str:
    from keys.services import create_api_key

    return create_api_key(name=name, team=team, **fields).plaintext


def client(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20)


def ask(gateway_url: str, key: str, model: str = "gpt-4o-mini") -> str:
    reply = client(gateway_url, key).chat.completions.create(model=model, messages=HELLO)
    return reply.choices[0].message.content


def refusal(gateway_url: str, key: str, model: str, error: type[openai.APIStatusError]) -> openai.APIStatusError:
    with pytest.raises(error) as caught:
        client(gateway_url, key).chat.completions.create(model=model, messages=HELLO)
    return caught.value


def priced_model(fake_provider) -> str:
    """gpt-4o at LiteLLM's prices, answered by the fake provider: every request costs the same few micro-dollars."""
    from routing.services import create_model

    create_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base)
    return "gpt-4o"


def cost_of_one_request(gateway_url: str) -> float:
    """What one HELLO to gpt-4o costs, measured with a key outside any team (the request log's cost)."""
    from keys.services import create_api_key

    ask(gateway_url, create_api_key(name="calibration").plaintext, model="gpt-4o")
    [row] = [row for row in logged_rows() if row.key_name == "calibration"]
    assert row.cost_usd and row.cost_usd > 0
    return float(row.cost_usd)


# A key's models ∩ its team's models


def test_a_key_may_use_only_models_both_it_and_its_team_allow(gateway_url, policy, fake_provider):
    team = make_team("research", models=["gpt-4o-mini", "capped"])
    key = team_key("narrow", team, models=["claude-3-5-sonnet-20241022", "fast"])  # fast → gpt-4o-mini

    assert ask(gateway_url, key, "fast")
    assert ask(gateway_url, key, "gpt-4o-mini")  # the alias's target, in both lists

    by_team = refusal(gateway_url, key, "claude-3-5-sonnet-20241022", openai.BadRequestError)
    assert (by_team.body["code"], by_team.body["param"]) == ("model_not_found", "model")
    assert "team" in by_team.body["message"] and "claude-3-5-sonnet-20241022" in by_team.body["message"]
    by_key = refusal(gateway_url, key, "capped", openai.BadRequestError)  # the team allows it, the key does not
    assert by_key.body["code"] == "model_not_found"
    assert "team" not in by_key.body["message"]

    assert sorted(model.id for model in client(gateway_url, key).models.list()) == ["fast", "gpt-4o-mini"]
    assert {request.body["model"] for request in fake_provider.requests} == {"fake-model"}  # nothing refused went out


def test_a_team_without_a_model_list_leaves_the_keys_list_alone(gateway_url, policy):
    key = team_key("open-team-key", make_team("open"), models=["capped"])
    assert [model.id for model in client(gateway_url, key).models.list()] == ["capped"]
    assert ask(gateway_url, key, "capped")


# A team budget spent across the team's keys


def test_a_team_budget_spent_by_two_keys_stops_both(gateway_url, fake_provider, limit_backend):  # noqa: F811
    from api.gateway import gateway

    model = priced_model(fake_provider)
    cost = cost_of_one_request(gateway_url)
    research = make_team("research", max_budget_usd=usd(cost * 1.5), budget_period="day")
    first, second = team_key("research-a", research), team_key("research-b", research)
    other = team_key("other-a", make_team("other", max_budget_usd=Decimal(1), budget_period="day"))

    assert ask(gateway_url, first, model)
    gateway.drain_threadsafe()  # the spend is settled right after the answer, off the request path
    assert ask(gateway_url, second, model)  # one request's cost is under the budget: the team may go on
    gateway.drain_threadsafe()  # now the team has spent twice the cost: over its budget

    for key in (first, second):
        refused = refusal(gateway_url, key, model, openai.RateLimitError)
        assert (refused.body["type"], refused.body["code"]) == ("insufficient_quota", "insufficient_quota")
        assert "team 'research'" in refused.body["message"]
        assert 0 < int(refused.response.headers["retry-after"]) <= 86400
    assert ask(gateway_url, other, model)  # another team's budget is its own

    rows = [row for row in logged_rows() if row.key_name.startswith("research-")]
    assert [(row.key_name, row.status) for row in rows] == [
        ("research-a", 200), ("research-b", 200), ("research-a", 429), ("research-b", 429),
    ]  # fmt: skip
    assert {row.team_name for row in rows} == {"research"}


# Rotation with a grace period


def test_rotate_command_keeps_the_old_key_for_the_grace_period_only(gateway_url, policy, manage_py):
    from keys.models import ApiKey

    old = team_key("rotating", make_team("research"))
    assert ask(gateway_url, old)
    output = manage_py("rotate_api_key", "rotating", "--grace-hours", "0.002").stdout  # 7.2 seconds
    [new] = re.findall(r"llmp_[A-Za-z0-9_\-]+", output)
    assert new != old

    assert ask(gateway_url, new)
    assert ask(gateway_url, old)  # still in its grace period
    stored = ApiKey.objects.get(name="rotating")
    assert stored.previous_expires_at is not None and stored.rotated_at is not None
    assert ApiKey.objects.count() == 1  # one key, one row: its id and history stay

    deadline = stored.previous_expires_at + timedelta(seconds=10)
    while timezone.now() < deadline:
        try:
            ask(gateway_url, old)
        except openai.AuthenticationError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the old key still works 10 s after its grace period ended")
    assert timezone.now() >= stored.previous_expires_at  # not refused before the grace period ended
    assert ask(gateway_url, new)


def test_ending_the_grace_period_in_the_admin_stops_the_old_key_at_once(gateway_url, policy):
    from keys.models import ApiKey
    from keys.services import rotate_api_key

    old = team_key("rotating", make_team("research"))
    assert ask(gateway_url, old)
    new = rotate_api_key(name="rotating", grace_hours=24).plaintext
    assert ask(gateway_url, old) and ask(gateway_url, new)

    stored = ApiKey.objects.get(name="rotating")
    stored.previous_expires_at = timezone.now() - timedelta(seconds=1)
    stored.save()  # an admin edit: bumps the policy version, so every worker's key cache notices
    with pytest.raises(openai.AuthenticationError):
        ask(gateway_url, old)
    assert ask(gateway_url, new)

    rows = logged_rows()
    assert {row.api_key_id for row in rows if row.status == 200} == {stored.pk}  # both secrets, one key


# Caches: a team edit reaches the gateway within a second; a warm team key costs no query


def test_a_team_edit_reaches_the_serving_gateway_within_a_second(gateway_url, policy):
    from api.gateway import gateway

    team = make_team("research", models=["gpt-4o-mini"])
    key = team_key("research-app", team)
    gateway.policy._refresh_seconds = 0.25  # production's version check, instead of the tests' every request
    try:
        assert ask(gateway_url, key)
        team.allowed_models = "capped"
        team.save()
        edited = time.monotonic()
        while True:
            try:
                ask(gateway_url, key)
            except openai.BadRequestError as refused:
                assert "team" in refused.body["message"]
                break
            assert time.monotonic() - edited < 1.0, "the team edit did not reach the gateway within 1 s"
            time.sleep(0.02)
        assert [model.id for model in client(gateway_url, key).models.list()] == ["capped"]
        assert ask(gateway_url, key, "capped")
    finally:
        gateway.policy._refresh_seconds = 0.0


def per_request_queries(gateway_url: str, key: str) -> list[str]:
    """The SQL the gateway runs for 30 warm requests, but for the request log's batched writes."""
    from api.gateway import gateway

    gateway.policy._refresh_seconds = 60.0  # production checks every 0.25 s; here no check may fall in the window
    try:
        for _ in range(3):  # warm: policy snapshot, key cache (the key with its team), last-used stamp, budgets
            assert ask(gateway_url, key)
        gateway.drain_threadsafe()
        with QueryCounter() as counter:
            for index in range(30):
                reply = client(gateway_url, key).chat.completions.create(
                    model="gpt-4o-mini", messages=HELLO, stream=index % 2 == 0
                )
                if index % 2 == 0:
                    list(reply)
            gateway.drain_threadsafe()
    finally:
        gateway.policy._refresh_seconds = 0.0
    log_writes = ("usage_requestlog", "usage_dailyusage")
    return [sql for sql in counter.statements
            if not any(table in sql for table in log_writes) and sql not in BATCH_TRANSACTION]  # fmt: skip


def test_a_warm_team_key_makes_no_database_query(gateway_url, policy):
    key = team_key("research-app", make_team("research", models=["gpt-4o-mini", "fast"]), models=["fast"])
    assert per_request_queries(gateway_url, key) == []


@pytest.mark.parametrize("limit_backend", ["redis"], indirect=True)
def test_a_warm_team_key_with_team_limits_on_redis_makes_no_database_query(gateway_url, policy, limit_backend):  # noqa: F811
    team = make_team("research", rpm_limit=10_000, tpm_limit=10_000_000, max_budget_usd=Decimal(100))
    key = team_key("research-app", team)
    assert per_request_queries(gateway_url, key) == []
