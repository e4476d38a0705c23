"""The policy diff, pure: the current policy as export_policy writes it against a file's data (no database)."""

from decimal import Decimal

from routing.policy_diff import ADDED, CHANGED, REMOVED, Change, FieldChange, diff_policy

CURRENT = {
    "models": {
        "gpt-4o": {"litellm_model": "openai/gpt-4o", "api_base": "http://127.0.0.1:9000/v1", "max_tokens": 100},
        "pool": {
            "fallbacks": ["gpt-4o"],
            "deployments": [{"litellm_model": "openai/a", "weight": 2}, {"litellm_model": "openai/b"}],
        },
    },
    "aliases": {"fast": "gpt-4o"},
    "teams": {"alpha": {"models": ["gpt-4o"], "rpm": 10, "max_budget": 50}},
}


def incoming(**changes) -> dict:
    """A file's data after validate_policy_data: the current policy with `changes` (teams as Team field values)."""
    data = {
        "models": {name: dict(spec) for name, spec in CURRENT["models"].items()},
        "aliases": dict(CURRENT["aliases"]),
        "teams": {"alpha": team_values(allowed_models="gpt-4o", rpm_limit=10, max_budget_usd=Decimal("50"))},
    }
    data.update(changes)
    return data


def team_values(**values) -> dict:
    return {"allowed_models": "", "rpm_limit": None, "tpm_limit": None, "max_budget_usd": None,
            "budget_period": "month", "alert_percent": None, **values}  # fmt: skip


def test_a_file_equal_to_the_export_gives_an_empty_diff():
    diff = diff_policy(CURRENT, incoming(), prune=True)
    assert not diff and diff.changes == [] and diff.lines() == ["no changes"]


def test_the_single_form_and_a_one_item_deployment_list_are_the_same_policy():
    models = dict(incoming()["models"])
    models["gpt-4o"] = {"max_tokens": 100, "deployments": [{"litellm_model": "openai/gpt-4o",
                                                            "api_base": "http://127.0.0.1:9000/v1"}]}  # fmt: skip
    assert not diff_policy(CURRENT, incoming(models=models))


def test_a_changed_model_lists_each_changed_field_with_old_and_new():
    models = incoming()["models"]
    models["gpt-4o"] = {**models["gpt-4o"], "max_tokens": 200, "api_base": "http://127.0.0.1:9001/v1",
                        "refused_params": ["audio"]}  # fmt: skip
    diff = diff_policy(CURRENT, incoming(models=models))
    assert diff.changes == [
        Change("model", "gpt-4o", CHANGED, (
            FieldChange("max_tokens", 100, 200),
            FieldChange("refused_params", "", "audio"),
            FieldChange("deployments[0].api_base", "http://127.0.0.1:9000/v1", "http://127.0.0.1:9001/v1"),
        ))
    ]  # fmt: skip
    assert "    max_tokens: 100 → 200" in diff.lines()
    assert "    refused_params: (none) → audio" in diff.lines()


def test_deployments_are_compared_by_index():
    models = incoming()["models"]
    deployments = [{"litellm_model": "openai/a", "weight": 3}, {"litellm_model": "openai/b", "rpm": 5},
                   {"litellm_model": "openai/c", "priority": 1}]  # fmt: skip
    models["pool"] = {"fallbacks": ["gpt-4o"], "deployments": deployments}
    fields = diff_policy(CURRENT, incoming(models=models)).changes[0].fields
    assert fields == (
        FieldChange("deployments[0].weight", 2, 3),
        FieldChange("deployments[1].rpm", None, 5),
        FieldChange("deployments[2]", None, {"litellm_model": "openai/c", "priority": 1}),
    )
    models["pool"] = {"fallbacks": ["gpt-4o"], "deployments": [{"litellm_model": "openai/a", "weight": 2}]}
    fields = diff_policy(CURRENT, incoming(models=models)).changes[0].fields
    assert fields == (FieldChange("deployments[1]", {"litellm_model": "openai/b"}, None),)
    assert fields[0].describe() == "deployments[1]: litellm_model=openai/b → (none)"


def test_fallbacks_are_compared_as_the_import_stores_them():
    models = incoming()["models"]
    models["pool"] = {**models["pool"], "fallbacks": "gpt-4o,  fast", "context_window_fallbacks": ["gpt-4o"]}
    fields = diff_policy(CURRENT, incoming(models=models)).changes[0].fields
    assert fields == (FieldChange("fallbacks", "gpt-4o", "gpt-4o, fast"),
                      FieldChange("context_window_fallbacks", "", "gpt-4o"))  # fmt: skip


def test_added_objects_show_their_settings_and_removals_need_prune():
    models = {"gpt-4o": CURRENT["models"]["gpt-4o"], "new": {"litellm_model": "openai/new", "max_tokens": 5}}
    data = incoming(models=models, aliases={"fast": "gpt-4o", "quick": "new"},
                    teams={"bravo": team_values(tpm_limit=1000)})  # fmt: skip
    kept = diff_policy(CURRENT, data)
    described = [change.describe() for change in kept.changes]
    assert described == ["added model new", "added alias quick", "added team bravo"]
    assert kept.changes[0].fields == (FieldChange("max_tokens", None, 5),
                                      FieldChange("deployments[0]", None, {"litellm_model": "openai/new"}))  # fmt: skip
    assert kept.changes[1].fields == (FieldChange("target", None, "new"),)
    assert kept.changes[2].fields == (FieldChange("tpm", None, 1000),)
    pruned = diff_policy(CURRENT, data, prune=True)
    assert [change.describe() for change in pruned.of(REMOVED)] == ["removed model pool", "removed team alpha"]
    assert len(pruned.of(ADDED)) == 3 and pruned.summary() == "3 added, 0 changed, 2 removed"


def test_aliases_and_teams_change_field_by_field():
    data = incoming(aliases={"fast": "pool"},
                    teams={"alpha": team_values(allowed_models="gpt-4o,pool", rpm_limit=10,
                                                max_budget_usd=Decimal("75.5"), budget_period="day")})  # fmt: skip
    diff = diff_policy(CURRENT, data)
    assert diff.changes == [
        Change("alias", "fast", CHANGED, (FieldChange("target", "gpt-4o", "pool"),)),
        Change("team", "alpha", CHANGED, (FieldChange("models", "gpt-4o", "gpt-4o,pool"),
                                          FieldChange("max_budget", Decimal("50"), Decimal("75.5")),
                                          FieldChange("budget_period", "month", "day"))),
    ]  # fmt: skip


def test_a_file_without_teams_leaves_them_alone_even_with_prune():
    assert not diff_policy(CURRENT, incoming(teams=None), prune=True)


def test_an_alias_whose_name_becomes_a_model_is_removed_without_prune():
    models = {**incoming()["models"], "fast": {}}
    diff = diff_policy(CURRENT, incoming(models=models, aliases={}))
    assert [change.describe() for change in diff.changes] == ["added model fast", "removed alias fast"]
