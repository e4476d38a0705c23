"""The rules a team sets for its keys: limits a key may not exceed, and the shape of a team itself."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from keys.models import ApiKey
from keys.services import create_api_key, set_api_key_limits
from teams.models import Team
from teams.services import create_team

pytestmark = pytest.mark.django_db(transaction=True)


def refusal(**key_limits) -> dict[str, list[str]]:
    team = Team.objects.get(name="research")
    with pytest.raises(ValidationError) as refused:
        create_api_key(name="too-much", team=team, **key_limits)
    assert not ApiKey.objects.filter(name="too-much").exists()
    return refused.value.message_dict


@pytest.fixture
def research() -> Team:
    return create_team(name="research", rpm_limit=100, tpm_limit=50_000, max_budget_usd=Decimal("20"))


@pytest.mark.parametrize(
    ("key_limits", "field", "message"),
    [
        ({"rpm_limit": 101}, "rpm_limit", "At most 100 requests per minute: the team 'research' has no more."),
        ({"tpm_limit": 60_000}, "tpm_limit", "At most 50000 tokens per minute: the team 'research' has no more."),
        ({"max_budget_usd": Decimal("20.01")}, "max_budget_usd", "At most 20 USD per month: the team 'research'"),
    ],
)
def test_a_key_cannot_be_given_more_than_its_team_has(research, key_limits, field, message):
    problems = refusal(**key_limits)
    assert list(problems) == [field] and problems[field][0].startswith(message)


def test_a_key_may_have_up_to_its_teams_limits_or_none_of_its_own(research):
    equal = create_api_key(name="equal", team=research, rpm_limit=100, tpm_limit=50_000, max_budget_usd=Decimal("20"))
    assert equal.api_key.team == research
    assert create_api_key(name="unlimited", team=research).api_key.has_limits is False  # the team's limits apply
    assert create_api_key(name="teamless", rpm_limit=10_000).api_key.team is None  # no team: no ceiling


def test_budgets_are_compared_only_when_their_periods_match(research):
    # 30 USD a day against the team's 20 a month is not "more of the same": the team's own budget still applies.
    create_api_key(name="daily", team=research, max_budget_usd=Decimal("30"), budget_period="day")
    with pytest.raises(ValidationError, match="the team 'research' has no more"):
        set_api_key_limits(name="daily", budget_period="month")


def test_changing_a_keys_limits_later_is_held_to_the_same_rule(research):
    create_api_key(name="app", team=research, rpm_limit=50)
    with pytest.raises(ValidationError, match="At most 100 requests per minute"):
        set_api_key_limits(name="app", rpm_limit=500)
    assert ApiKey.objects.get(name="app").rpm_limit == 50


def test_a_team_without_limits_sets_no_ceiling():
    relaxed = create_team(name="relaxed")
    assert create_api_key(name="big", team=relaxed, rpm_limit=10_000).api_key.rpm_limit == 10_000
    assert relaxed.has_limits is False


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rpm_limit": 0}, "A limit of 0 would block every request"),
        ({"max_budget_usd": Decimal("-1")}, "A budget cannot be negative"),
        ({"models": ["gpt-4o", "gpt-4o"]}, "A model is listed twice"),
        ({"alert_percent": 101}, "less than or equal to 100"),
        ({"alert_percent": 0}, "greater than or equal to 1"),
        ({"budget_period": "week"}, "not a valid choice"),
    ],
)
def test_a_bad_team_is_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        create_team(name="bad", **fields)
    assert not Team.objects.exists()


def test_a_teams_model_list_is_stored_tidy_and_two_teams_cannot_share_a_name():
    team = create_team(name="ops", models=[" gpt-4o", "fast "])
    assert team.allowed_models == "gpt-4o,fast" and team.model_allowlist == ["gpt-4o", "fast"]
    with pytest.raises(ValidationError, match="already exists"):
        create_team(name="ops")


def test_a_team_with_keys_cannot_be_deleted(research):
    from django.db.models import ProtectedError

    create_api_key(name="app", team=research)
    with pytest.raises(ProtectedError):
        research.delete()
    assert Team.objects.filter(name="research").exists()
