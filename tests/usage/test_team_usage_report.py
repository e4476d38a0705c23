"""Usage per team: the request log and the rollup carry the team and the key's id; usage_report --team and --by."""

import json
from decimal import Decimal

import openai
import pytest
from django.utils import timezone

from tests.usage.conftest import wait_for_rows
from usage.recorder import write_rows

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]


def log_row(**overrides) -> dict:
    row = {
        "created_at": timezone.now(), "api_key_id": None, "key_name": "app", "team_id": None, "team_name": "",
        "requested_model": "gpt-4o-mini", "resolved_model": "gpt-4o-mini", "litellm_model": "openai/gpt-4o-mini",
        "streamed": False, "status": 200, "error_code": "", "end_reason": "completed", "prompt_tokens": 10,
        "completion_tokens": 5, "total_tokens": 15, "usage_estimated": False, "cost_usd": Decimal("0.001"),
        "latency_ms": 12.0, "ttft_ms": None,
    }  # fmt: skip
    row.update(overrides)
    return row


def key_in(team, name: str):
    from keys.services import create_api_key

    return create_api_key(name=name, team=team).api_key


@pytest.fixture
def two_teams() -> None:
    from teams.services import create_team

    research, ops = create_team(name="research"), create_team(name="ops")
    rows = []
    for key, count in ((key_in(research, "r-one"), 2), (key_in(research, "r-two"), 1), (key_in(ops, "o-one"), 3)):
        rows += [log_row(api_key_id=key.pk, key_name=key.name, team_id=key.team_id, team_name=key.team.name)] * count
    solo = key_in(None, "solo")
    rows.append(log_row(api_key_id=solo.pk, key_name="solo", cost_usd=Decimal("0.5")))
    write_rows(rows)


def test_usage_report_for_one_team(manage_py, two_teams):
    rows = json.loads(manage_py("usage_report", "--team", "research", "--json").stdout)
    assert [(row["key"], row["team"], row["requests"]) for row in rows] == [("r-one", "research", 2),
                                                                           ("r-two", "research", 1)]  # fmt: skip
    assert set(rows[0]) == {"key", "team", "model", "endpoint", "requests", "errors", "prompt_tokens",
                            "completion_tokens", "cost_usd"}  # fmt: skip
    table = manage_py("usage_report", "--team", "ops").stdout
    assert "o-one" in table and "r-one" not in table and "team" in table.splitlines()[0]
    assert "(no usage recorded)" in manage_py("usage_report", "--team", "nobody").stdout


def test_usage_report_by_team(manage_py, two_teams):
    rows = json.loads(manage_py("usage_report", "--by", "team", "--json").stdout)
    assert [(row["team"], row["requests"], row["cost_usd"]) for row in rows] == [
        ("", 1, 0.5),  # keys without a team
        ("ops", 3, 0.003),
        ("research", 3, 0.003),
    ]
    table = manage_py("usage_report", "--by", "team").stdout.splitlines()
    assert table[0].split()[:3] == ["team", "requests", "errors"]
    assert [line.split()[0] for line in table[1:]] == ["-", "ops", "research"]
    assert manage_py("usage_report", "--by", "model", check=False).returncode != 0


def test_a_renamed_key_keeps_its_history_and_a_new_key_with_its_old_name_starts_afresh(manage_py):
    from keys.models import ApiKey
    from keys.services import create_api_key
    from usage.models import DailyUsage

    key = create_api_key(name="billing").api_key
    write_rows([log_row(api_key_id=key.pk, key_name="billing")] * 2)
    ApiKey.objects.filter(pk=key.pk).update(name="invoicing")
    write_rows([log_row(api_key_id=key.pk, key_name="invoicing")])
    newcomer = create_api_key(name="billing").api_key
    write_rows([log_row(api_key_id=newcomer.pk, key_name="billing", cost_usd=Decimal("0.25"))])

    renamed = json.loads(manage_py("usage_report", "--key", "invoicing", "--json").stdout)
    assert [(row["key"], row["requests"], row["cost_usd"]) for row in renamed] == [("invoicing", 3, 0.003)]
    fresh = json.loads(manage_py("usage_report", "--key", "billing", "--json").stdout)
    assert [(row["key"], row["requests"], row["cost_usd"]) for row in fresh] == [("billing", 1, 0.25)]
    rollup = sorted(DailyUsage.objects.values_list("api_key_id", "key_name", "requests"))
    assert rollup == sorted([(key.pk, "billing", 2), (key.pk, "invoicing", 1), (newcomer.pk, "billing", 1)])


def test_a_key_that_changes_team_leaves_its_spend_with_the_team_it_spent_for(manage_py):
    from teams.services import create_team

    research, ops = create_team(name="research"), create_team(name="ops")
    key = key_in(research, "mover")
    write_rows([log_row(api_key_id=key.pk, key_name="mover", team_id=research.pk, team_name="research")])
    write_rows([log_row(api_key_id=key.pk, key_name="mover", team_id=ops.pk, team_name="ops")] * 2)
    rows = json.loads(manage_py("usage_report", "--by", "team", "--json").stdout)
    assert [(row["team"], row["requests"]) for row in rows] == [("ops", 2), ("research", 1)]


def test_the_gateway_logs_the_team_of_the_key(gateway_url, policy):
    from keys.services import create_api_key
    from teams.services import create_team
    from usage.models import DailyUsage

    team = create_team(name="research")
    key = create_api_key(name="app", team=team).plaintext
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20)
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    [row] = wait_for_rows(1)
    assert (row.key_name, row.team_id, row.team_name) == ("app", team.pk, "research")
    [daily] = DailyUsage.objects.all()
    assert (daily.key_name, daily.team_id, daily.team_name, daily.requests) == ("app", team.pk, "research", 1)
