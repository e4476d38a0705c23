"""A team's rate limits and budget alerts through the live gateway: one rpm shared by the team's keys and exact
across two server processes (database counters and Redis), the tightest limit in the x-ratelimit headers, and one
email to the team's admins when spend crosses the alert threshold."""

import time

import openai
import pytest

from tests.e2e.test_teams import HELLO, ask, client, cost_of_one_request, make_team, priced_model, team_key, usd
from tests.usage.conftest import (  # noqa: F401  (fixtures)
    burst,
    limit_backend,
    subprocess_database_url,
    two_gateways,
    wait_for_minute_window,
)

pytestmark = pytest.mark.django_db(transaction=True)


def raw(gateway_url: str, key: str):
    """The answer's headers, or the refusal's (openai raises on a 429)."""
    try:
        return client(gateway_url, key).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    except openai.RateLimitError as refused:
        return refused.response


def requests_headers(response) -> tuple[str, str]:
    return response.headers["x-ratelimit-limit-requests"], response.headers["x-ratelimit-remaining-requests"]


# One rpm for the whole team, exact across processes


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_a_team_rpm_is_exact_across_two_processes_and_the_teams_keys(subprocess_database_url, policy, backend):  # noqa: F811
    from keys.services import create_api_key

    team = make_team("research", rpm_limit=9)
    keys = [team_key("research-a", team), team_key("research-b", team)]
    outsider = create_api_key(name="outsider").plaintext
    with two_gateways(subprocess_database_url, backend) as servers:
        responses = burst(servers, keys, 32)
        outsiders = [client(server.url, outsider).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
                     for server in servers]  # fmt: skip
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 9, statuses
    assert statuses.count(429) == 23
    for refused in (response for response in responses if response.status_code == 429):
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_exceeded"
        assert "team 'research'" in error["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert all(answer.choices for answer in outsiders)  # a key outside the team is not held back


# The tightest limit in the headers


def test_headers_show_whichever_limit_has_least_left(gateway_url, policy, limit_backend):  # noqa: F811
    wait_for_minute_window()
    team = make_team("research", rpm_limit=10, tpm_limit=100_000)
    mine = team_key("research-a", team, rpm_limit=8)
    theirs = team_key("research-b", team)

    first = raw(gateway_url, mine)
    assert requests_headers(first) == ("8", "7")  # the key's own limit is the tighter one for now
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"  # the key has none: the team's applies
    assert [requests_headers(raw(gateway_url, theirs)) for _ in range(6)] == [
        ("10", str(remaining)) for remaining in (8, 7, 6, 5, 4, 3)
    ]
    assert [requests_headers(raw(gateway_url, mine)) for _ in range(3)] == [("10", "2"), ("10", "1"), ("10", "0")]

    refused = raw(gateway_url, mine)  # the key has 4 of its 8 left, the team none of its 10
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_exceeded" and "team 'research'" in error["message"]
    assert requests_headers(refused) == ("10", "0")
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_a_key_over_its_lowered_team_limit_is_held_to_the_team(gateway_url, policy, limit_backend):  # noqa: F811
    wait_for_minute_window()
    team = make_team("research", rpm_limit=200)
    key = team_key("research-a", team, rpm_limit=100)
    team.rpm_limit = 5  # lowered after the key was given 100
    team.save()

    responses = [raw(gateway_url, key) for _ in range(6)]
    assert [response.status_code for response in responses] == [200] * 5 + [429]
    assert [requests_headers(response) for response in responses] == [
        ("5", str(remaining)) for remaining in (4, 3, 2, 1, 0, 0)
    ]
    assert "team 'research'" in responses[-1].json()["error"]["message"]


# Budget alerts


def admins_and_members(team) -> None:
    from django.contrib.auth.models import User

    from teams.services import add_team_member

    for username, role in (("alice", "admin"), ("carol", "admin"), ("bob", "member")):
        user = User.objects.create_user(username, email=f"{username}@example.com", password="not-used-here-1")
        add_team_member(team=team, user=user, role=role)
    add_team_member(
        team=make_team("elsewhere"), user=User.objects.create_user("dave", email="dave@example.com"), role="admin"
    )


def emails_after_each_request(gateway_url: str, key: str, model: str, outbox: list, requests: int) -> list[int]:
    """How many emails were sent after each request: waits up to 3 s for one (the email is sent off the request
    path), then 1 s more at the end to see that nothing else arrives."""
    from api.gateway import gateway

    counts = []
    for _ in range(requests):
        before = len(outbox)
        assert ask(gateway_url, key, model)
        gateway.drain_threadsafe()
        deadline = time.monotonic() + 3
        while len(outbox) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        counts.append(len(outbox))
    settle_deadline = time.monotonic() + 1  # and nothing more arrives afterwards
    while time.monotonic() < settle_deadline:
        assert len(outbox) == counts[-1]
        time.sleep(0.1)
    return counts


@pytest.fixture
def outbox(settings, mailoutbox) -> list:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return mailoutbox


def test_crossing_the_team_alert_threshold_emails_the_team_admins_once(gateway_url, fake_provider, limit_backend,  # noqa: F811
                                                                      outbox):  # fmt: skip
    from usage.models import BudgetAlert

    model = priced_model(fake_provider)
    cost = cost_of_one_request(gateway_url)
    team = make_team("research", max_budget_usd=usd(cost * 3.5), budget_period="month", alert_percent=50)
    admins_and_members(team)
    key = team_key("research-app", team)

    # spend after each request: 29%, 57% (crosses 50%), 86% of the budget
    assert emails_after_each_request(gateway_url, key, model, outbox, 3) == [0, 1, 1]
    [email] = outbox
    assert sorted(email.to) == ["alice@example.com", "carol@example.com"]  # the admins: not members, not others
    assert "research" in email.subject
    assert "50%" in email.subject + email.body
    [alert] = BudgetAlert.objects.all()
    assert (alert.subject, alert.team_id, alert.percent) == ("team", team.pk, 50)
    assert float(alert.spent_usd) == pytest.approx(2 * cost, rel=0.01)


def test_crossing_a_keys_alert_threshold_emails_its_teams_admins_once(gateway_url, fake_provider, limit_backend,  # noqa: F811
                                                                     outbox):  # fmt: skip
    from usage.models import BudgetAlert

    model = priced_model(fake_provider)
    cost = cost_of_one_request(gateway_url)
    team = make_team("research")
    admins_and_members(team)
    key = team_key("research-app", team, max_budget_usd=usd(cost * 3.5), budget_period="day", alert_percent=50)

    assert emails_after_each_request(gateway_url, key, model, outbox, 3) == [0, 1, 1]
    [email] = outbox
    assert sorted(email.to) == ["alice@example.com", "carol@example.com"]
    assert "research-app" in email.subject + email.body
    [alert] = BudgetAlert.objects.all()
    assert (alert.subject, alert.api_key.name) == ("key", "research-app")
