"""Budget alerts: crossing a team's (or key's) alert threshold sends one email per budget period to the people who
answer for it, records the crossing, and never disturbs a request. Django's locmem backend catches the emails."""

import asyncio
from decimal import Decimal

import openai
import pytest

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi there"}]  # gpt-4o: 2 + 5 tokens, ~$0.000055 a call


@pytest.fixture
def priced_model(fake_provider) -> str:
    from routing.services import create_model

    create_model("gpt-4o", litellm_model="openai/gpt-4o", api_base=fake_provider.openai_base)
    return "gpt-4o"


def user(name: str, *, email: str = ""):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(name, email=email if email else f"{name}@example.com")


def research_team(**limits):
    from teams.services import add_team_member, create_team

    team = create_team(name="research", **limits)
    add_team_member(team=team, user=user("alice"), role="admin")
    add_team_member(team=team, user=user("dora"), role="admin")
    add_team_member(team=team, user=user("bob"), role="member")
    return team


def call(gateway_url: str, key: str, model: str) -> None:
    from api.gateway import gateway

    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20)
    assert client.chat.completions.create(model=model, messages=HELLO).choices
    gateway.drain_threadsafe()  # settling (and alerting) runs after the answer: wait for it


def test_a_team_crossing_its_threshold_emails_its_admins_once(gateway_url, priced_model, mailoutbox):
    from keys.services import create_api_key
    from usage.models import BudgetAlert

    team = research_team(max_budget_usd=Decimal("0.0002"), budget_period="day", alert_percent=50)
    key = create_api_key(name="app", team=team).plaintext
    call(gateway_url, key, priced_model)  # 27.5 % of the budget
    assert mailoutbox == [] and not BudgetAlert.objects.exists()
    call(gateway_url, key, priced_model)  # 55 %: crossed
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert sorted(email.to) == ["alice@example.com", "dora@example.com"]  # the admins, not the member
    assert email.subject == "[llmproxy] Team 'research' has used 55% of its budget"
    assert "$0.000110 of its $0.000200 budget for the day" in email.body and "threshold is 50%" in email.body
    call(gateway_url, key, priced_model)  # 82.5 %: still the same period
    assert len(mailoutbox) == 1
    [alert] = BudgetAlert.objects.all()
    assert (alert.subject, alert.team_id, alert.api_key_id, alert.percent) == ("team", team.pk, None, 50)
    assert alert.period.startswith("day:") and alert.spent_usd == Decimal("0.00011")
    assert alert.sent_at is not None and alert.recipients == "alice@example.com, dora@example.com"


def test_a_key_without_a_team_alerts_its_creator(gateway_url, priced_model, mailoutbox):
    from keys.services import create_api_key

    creator = user("carol", email="carol@example.com")
    key = create_api_key(name="solo", max_budget_usd=Decimal("0.0001"), budget_period="month", alert_percent=40,
                         created_by=creator).plaintext  # fmt: skip
    call(gateway_url, key, priced_model)  # 55 % at once
    [email] = mailoutbox
    assert email.to == ["carol@example.com"]
    assert email.subject == "[llmproxy] API key 'solo' has used 55% of its budget"
    assert "for the month" in email.body


def test_a_key_in_a_team_alerts_the_team_admins(gateway_url, priced_model, mailoutbox):
    from keys.services import create_api_key
    from usage.models import BudgetAlert

    team = research_team()  # the team has no budget: only the key's alert applies
    key = create_api_key(name="member-app", team=team, max_budget_usd=Decimal("0.0001"), budget_period="day",
                         alert_percent=50, created_by=user("erin")).plaintext  # fmt: skip
    call(gateway_url, key, priced_model)
    [email] = mailoutbox
    assert sorted(email.to) == ["alice@example.com", "dora@example.com"]
    assert BudgetAlert.objects.get().subject == "key"


def test_below_the_threshold_nothing_is_sent(gateway_url, priced_model, mailoutbox):
    from keys.services import create_api_key
    from usage.models import BudgetAlert

    team = research_team(max_budget_usd=Decimal("1"), budget_period="day", alert_percent=90)
    key = create_api_key(name="thrifty", team=team).plaintext
    call(gateway_url, key, priced_model)
    call(gateway_url, key, priced_model)
    assert mailoutbox == [] and not BudgetAlert.objects.exists()


def test_a_failing_mail_server_never_fails_the_request(gateway_url, priced_model, settings):
    from keys.services import create_api_key
    from usage.models import BudgetAlert

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    team = research_team(max_budget_usd=Decimal("0.0001"), budget_period="day", alert_percent=10)
    key = create_api_key(name="app", team=team).plaintext
    call(gateway_url, key, priced_model)  # answered; the alert is recorded, its email failed (and was logged)
    alert = BudgetAlert.objects.get()
    assert alert.sent_at is None and alert.recipients == ""


def test_one_email_per_period_even_when_processes_race(transactional_db, mailoutbox):
    """Two processes that both see the crossing (each its own BudgetAlerts) send one email: the unique row decides.
    A new period alerts again."""
    from keys.lookup import fetch_key_record
    from keys.models import ApiKey
    from keys.services import create_api_key
    from usage.alerts import BudgetAlerts
    from usage.limits import Subject
    from usage.models import BudgetAlert

    team = research_team(max_budget_usd=Decimal("10"), budget_period="month", alert_percent=80)
    create_api_key(name="app", team=team)
    record = fetch_key_record(ApiKey.objects.get(name="app").key_hash).team

    def subject(period: str) -> Subject:
        return Subject(label="team", record=record, period=period, budget_ttl=0)

    async def scenario() -> None:
        first, second = BudgetAlerts(), BudgetAlerts()
        await asyncio.gather(
            first.note_spend((subject("month:2026-10"),), (8_500_000,)),
            second.note_spend((subject("month:2026-10"),), (8_600_000,)),
        )
        await first.note_spend((subject("month:2026-10"),), (9_000_000,))  # already claimed here: no query
        await second.note_spend((subject("month:2026-11"),), (7_999_999,))  # below 80 %
        await second.note_spend((subject("month:2026-11"),), (8_000_000,))  # a new month, crossed again

    asyncio.run(scenario())
    assert len(mailoutbox) == 2
    assert list(BudgetAlert.objects.order_by("period").values_list("period", flat=True)) == [
        "month:2026-10",
        "month:2026-11",
    ]
