import pytest

from routing.policy import ModelPolicy, PolicySnapshot
from routing.resolver import ModelNotAllowed, resolve, visible_model_names


def make_snapshot() -> PolicySnapshot:
    models = {
        "gpt-4o": ModelPolicy(name="gpt-4o", litellm_model="openai/gpt-4o", provider="openai", max_tokens=100),
        "uncapped": ModelPolicy(name="uncapped", litellm_model="openai/uncapped", provider="openai"),
        "claude": ModelPolicy(name="claude", litellm_model="anthropic/claude-sonnet-4-5", provider="anthropic"),
    }
    aliases = {"fast": "gpt-4o", "smart": "claude", "old": "retired-model"}
    return PolicySnapshot(models=models, aliases=aliases, version="v1")


SNAPSHOT = make_snapshot()


def test_alias_is_rewritten_to_its_target():
    route = resolve(SNAPSHOT, requested_model="fast", params={})
    assert route.model.name == "gpt-4o"
    assert route.requested_model == "fast"


def test_unknown_model_is_rejected():
    with pytest.raises(ModelNotAllowed, match="nope"):
        resolve(SNAPSHOT, requested_model="nope", params={})


def test_alias_to_a_disabled_or_deleted_model_is_rejected():
    with pytest.raises(ModelNotAllowed):
        resolve(SNAPSHOT, requested_model="old", params={})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_tokens": 500}, {"max_tokens": 100}),
        ({"max_tokens": 10}, {"max_tokens": 10}),
        ({}, {"max_tokens": 100}),
        ({"max_completion_tokens": 500}, {"max_completion_tokens": 100}),
        ({"max_completion_tokens": 7}, {"max_completion_tokens": 7}),
        ({"max_tokens": 500, "max_completion_tokens": 50}, {"max_tokens": 100, "max_completion_tokens": 50}),
    ],
)
def test_token_cap(params, expected):
    route = resolve(SNAPSHOT, requested_model="gpt-4o", params={"temperature": 0.5, **params})
    assert dict(route.params) == {"temperature": 0.5, **expected}


def test_uncapped_model_keeps_the_request_as_sent():
    assert dict(resolve(SNAPSHOT, requested_model="uncapped", params={}).params) == {}
    assert dict(resolve(SNAPSHOT, requested_model="uncapped", params={"max_tokens": 9999}).params) == {
        "max_tokens": 9999
    }


def test_cap_applies_through_an_alias():
    assert resolve(SNAPSHOT, requested_model="fast", params={"max_tokens": 1000}).params["max_tokens"] == 100


def test_key_allowlist_admits_listed_models_and_aliases_of_them():
    allowlist = frozenset({"gpt-4o"})
    assert resolve(SNAPSHOT, requested_model="gpt-4o", params={}, allowlist=allowlist).model.name == "gpt-4o"
    assert resolve(SNAPSHOT, requested_model="fast", params={}, allowlist=allowlist).model.name == "gpt-4o"
    with pytest.raises(ModelNotAllowed, match="may not use"):
        resolve(SNAPSHOT, requested_model="claude", params={}, allowlist=allowlist)


def test_key_allowlist_naming_an_alias_admits_its_target():
    allowlist = frozenset({"smart"})
    assert resolve(SNAPSHOT, requested_model="claude", params={}, allowlist=allowlist).model.name == "claude"
    with pytest.raises(ModelNotAllowed):
        resolve(SNAPSHOT, requested_model="gpt-4o", params={}, allowlist=allowlist)


def test_visible_models_list_models_and_live_aliases_for_the_key():
    assert visible_model_names(SNAPSHOT, None) == ["claude", "fast", "gpt-4o", "smart", "uncapped"]
    assert visible_model_names(SNAPSHOT, frozenset({"fast"})) == ["fast", "gpt-4o"]


def test_resolver_does_not_mutate_the_request_params():
    params = {"max_tokens": 500}
    resolve(SNAPSHOT, requested_model="gpt-4o", params=params)
    assert params == {"max_tokens": 500}
