"""The policy file's teams: section: upsert, round trip, --prune (refused while a team has keys), bad values."""

from decimal import Decimal

import pytest
import yaml

from keys.services import create_api_key
from routing.policy_io import PolicyFileError, dump_policy_yaml, export_policy, import_policy, validate_policy_data
from teams.models import Membership, Team
from teams.services import add_team_member, create_team

pytestmark = pytest.mark.django_db(transaction=True)

POLICY = {
    "models": {"gpt-4o": {"litellm_model": "openai/gpt-4o", "api_base": "http://127.0.0.1:9000/v1"}},
    "aliases": {"fast": "gpt-4o"},
    "teams": {
        "research": {
            "models": ["gpt-4o", "fast"],
            "rpm": 60,
            "tpm": 20000,
            "max_budget": 12.345678,
            "budget_period": "day",
            "alert_percent": 80,
        },
        "support": {"max_budget": 100},
        "open": {},
    },
}


def load(data: dict, *, prune: bool = False):
    return import_policy(validate_policy_data(yaml.safe_load(yaml.safe_dump(data))), prune=prune)


def test_teams_are_created_then_left_unchanged_and_round_trip_through_export():
    result = load(POLICY)
    assert sorted(name for name in result.created if name.startswith("team")) == [
        "team open",
        "team research",
        "team support",
    ]
    research = Team.objects.get(name="research")
    assert (research.model_allowlist, research.rpm_limit, research.tpm_limit) == (["gpt-4o", "fast"], 60, 20000)
    assert (research.max_budget_usd, research.budget_period, research.alert_percent) == (
        Decimal("12.345678"),
        "day",
        80,
    )
    assert Team.objects.get(name="support").max_budget_usd == Decimal("100")
    again = load(POLICY)
    assert again.created == again.updated == again.deleted == [] and len(again.unchanged) == 5
    exported = yaml.safe_load(dump_policy_yaml(export_policy()))
    assert exported["teams"] == POLICY["teams"]
    assert load(exported).updated == []


def test_a_changed_team_is_updated_and_a_setting_left_out_returns_to_its_default():
    load(POLICY)
    changed = {**POLICY, "teams": {**POLICY["teams"], "research": {"models": "gpt-4o", "rpm": 30}}}
    result = load(changed)
    assert result.updated == ["team research"]
    research = Team.objects.get(name="research")
    assert (research.allowed_models, research.rpm_limit, research.tpm_limit, research.max_budget_usd) == (
        "gpt-4o", 30, None, None
    )  # fmt: skip
    assert (research.budget_period, research.alert_percent) == ("month", None)


def test_members_and_keys_never_appear_in_the_file_and_survive_an_import(django_user_model):
    load(POLICY)
    research = Team.objects.get(name="research")
    create_api_key(name="research-app", team=research)
    add_team_member(team=research, user=django_user_model.objects.create_user("alice", password="x"), role="admin")
    text = dump_policy_yaml(export_policy())
    assert "alice" not in text and "research-app" not in text and "llmp_" not in text
    load(POLICY)
    assert research.keys.count() == 1 and Membership.objects.filter(team=research).count() == 1


def test_prune_deletes_teams_the_file_no_longer_names():
    load(POLICY)
    smaller = {**POLICY, "teams": {"open": {}}}
    result = load(smaller, prune=True)
    assert sorted(result.deleted) == ["team research", "team support"]
    assert list(Team.objects.values_list("name", flat=True)) == ["open"]
    assert "team open" in load({**POLICY, "teams": {}}, prune=True).deleted  # an empty section names no team


def test_prune_is_refused_while_a_dropped_team_still_has_keys_and_nothing_changes():
    load(POLICY)
    create_api_key(name="research-app", team=Team.objects.get(name="research"))
    smaller = {"models": {}, "aliases": {}, "teams": {"open": {}}}
    with pytest.raises(PolicyFileError) as refused:
        load(smaller, prune=True)
    assert str(refused.value) == (
        "teams: the file no longer names the team 'research', but it still has 1 API key(s) (research-app): "
        "move or delete them first, or keep the team in the file. Nothing was changed."
    )
    assert Team.objects.count() == 3  # the transaction rolled back the whole import, models included
    from routing.models import AllowedModel

    assert AllowedModel.objects.filter(name="gpt-4o").exists()


def test_a_file_without_a_teams_section_leaves_teams_alone_even_with_prune():
    create_team(name="kept")
    result = load({"models": POLICY["models"], "aliases": {}}, prune=True)
    assert not [name for name in result.deleted if name.startswith("team")]
    assert Team.objects.filter(name="kept").exists()
    assert export_policy()["teams"] == {"kept": {}}


def test_export_writes_no_teams_section_when_there_are_none():
    load({"models": POLICY["models"], "aliases": POLICY["aliases"]})
    assert "teams" not in export_policy()


@pytest.mark.parametrize(
    ("teams", "message"),
    [
        (["research"], "'teams' is a mapping"),
        ({"t": {"colour": "red"}}, "teams.t: unknown setting(s) colour."),
        ({"t": "everything"}, "teams.t: expected a mapping of settings."),
        ({"t": {"models": [1, 2]}}, "teams.t.models: a list of model or alias names."),
        ({"t": {"rpm": "fast"}}, "teams.t.rpm: a whole number."),
        ({"t": {"alert_percent": True}}, "teams.t.alert_percent: a whole number."),
        ({"t": {"max_budget": "lots"}}, "teams.t.max_budget: an amount in USD."),
        ({"t": {"rpm": 0}}, "teams.t: A limit of 0 would block every request"),
        ({"t": {"max_budget": -5}}, "teams.t.max_budget: A budget cannot be negative."),
        ({"t": {"alert_percent": 120}}, "teams.t.alert_percent: Ensure this value is less than or equal to 100."),
        ({"t": {"budget_period": "week"}}, "teams.t.budget_period: Value 'week' is not a valid choice."),
    ],
)
def test_a_bad_teams_section_is_refused_naming_the_setting(teams, message):
    with pytest.raises(PolicyFileError) as refused:
        load({"models": {}, "aliases": {}, "teams": teams})
    assert message in str(refused.value)
    assert not Team.objects.exists()


def test_import_and_export_policy_commands_carry_teams(manage_py, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    assert (
        manage_py("import_policy", str(path)).stdout.splitlines()[-1] == "5 created, 0 updated, 0 unchanged, 0 deleted"
    )
    exported = manage_py("export_policy").stdout
    assert yaml.safe_load(exported)["teams"] == POLICY["teams"]
    create_api_key(name="app", team=Team.objects.get(name="support"))
    (tmp_path / "none.yaml").write_text(yaml.safe_dump({**POLICY, "teams": {"open": {}}}))
    refused = manage_py("import_policy", str(tmp_path / "none.yaml"), "--prune", check=False)
    assert refused.returncode != 0 and "still has 1 API key(s) (app)" in refused.stderr
    assert Team.objects.count() == 3
