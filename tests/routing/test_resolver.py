import pytest

from routing.policy import ModelPolicy, PolicySnapshot
from routing.resolver import ModelNotAllowed, ParameterRefused, resolve, token_reservation, visible_model_names


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


def policy(name: str, litellm_model: str, provider: str, **fields) -> ModelPolicy:
    return ModelPolicy(name=name, litellm_model=litellm_model, provider=provider, **fields)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"max_completion_tokens": 100}),
        ({"max_tokens": 500}, {"max_completion_tokens": 100}),
        ({"max_tokens": 7}, {"max_completion_tokens": 7}),
        ({"max_completion_tokens": 9, "max_tokens": 50}, {"max_completion_tokens": 9}),
    ],
)
def test_a_reasoning_model_is_capped_in_max_completion_tokens(params, expected):
    o3 = policy("o3", "openai/o3", "openai", max_tokens=100)
    assert (o3.provider_model, o3.token_field) == ("o3", "max_completion_tokens")
    route = resolve(PolicySnapshot(models={"o3": o3}), requested_model="o3", params=params)
    assert dict(route.params) == expected


def test_a_self_hosted_model_id_loses_its_prefix_once_per_snapshot():
    local = policy("local", "hosted_vllm/org/llama-3", "hosted_vllm")
    assert (local.provider_model, local.token_field, local.extra_fields) == ("org/llama-3", "max_tokens", None)


def refusal(model: ModelPolicy, params: dict, extra: dict | None = None) -> ParameterRefused:
    with pytest.raises(ParameterRefused) as caught:
        resolve(PolicySnapshot(models={model.name: model}), requested_model=model.name, params=params, extra=extra)
    return caught.value


def test_n_above_max_n_and_refused_fields_name_the_field():
    model = policy("m", "openai/gpt-4o", "openai", max_n=2, refused_params=frozenset({"service_tier", "foo"}))
    assert refusal(model, {"n": 3}).param == "n"
    assert refusal(model, {"n": 3}).code == "integer_above_max_value"
    assert refusal(model, {"service_tier": "flex"}).param == "service_tier"
    assert refusal(model, {}, {"foo": 1}).param == "foo"
    assert resolve(PolicySnapshot(models={"m": model}), requested_model="m", params={"n": 2}).params == {"n": 2}


def test_unknown_fields_go_where_the_provider_takes_them():
    claude = policy("claude", "anthropic/claude-sonnet-4-5", "anthropic")
    gemini = policy("gemini", "gemini/gemini-2.5-pro", "gemini")
    snapshot = PolicySnapshot(models={"claude": claude, "gemini": gemini, "gpt": policy("gpt", "gpt-4o", "openai")})
    assert resolve(snapshot, requested_model="gpt", params={}, extra={"anything": 1}).extra_body == {"anything": 1}
    assert resolve(snapshot, requested_model="claude", params={}, extra={"top_k": 5}).extra_body == {"top_k": 5}
    refused = refusal(claude, {}, {"chat_template_kwargs": {}})
    assert refused.param == "chat_template_kwargs" and "top_k" in refused.message
    assert refusal(gemini, {}, {"top_k": 5}).param == "top_k"


@pytest.mark.parametrize(
    ("params", "messages", "expected"),
    [
        ({"max_tokens": 5}, [{"role": "user", "content": "x" * 400}], 5 + 100 + 4),
        ({"max_tokens": 5, "n": 8}, [{"role": "user", "content": "hi"}], 40 + 0 + 4),
        ({}, [{"role": "user", "content": "hi"}], 4096 + 4),
        ({"max_completion_tokens": 10, "n": 2}, [{"role": "user", "content": [
            {"type": "text", "text": "y" * 40}, {"type": "image_url", "image_url": {"url": "data:..."}}]}],
         20 + 10 + 765 + 4),
    ],
)  # fmt: skip
def test_the_token_reservation_is_n_times_the_output_limit_plus_the_prompt(params, messages, expected):
    route = resolve(SNAPSHOT, requested_model="uncapped", params=params)
    assert token_reservation(route, messages) == expected


@pytest.mark.parametrize(
    ("token_fields", "params", "expected"),
    [
        (("max_output_tokens",), {}, {"max_output_tokens": 100}),  # Responses: the cap added as its own field
        (("max_output_tokens",), {"max_output_tokens": 500}, {"max_output_tokens": 100}),
        (("max_output_tokens",), {"max_output_tokens": 7}, {"max_output_tokens": 7}),
        (("max_output_tokens",), {"max_tokens": 5}, {"max_tokens": 5, "max_output_tokens": 100}),  # not its field
        (("max_tokens",), {"max_tokens": 500}, {"max_tokens": 100}),  # Messages
        ((), {}, {}),  # Embeddings: no output, no cap
        ((), {"dimensions": 256}, {"dimensions": 256}),
    ],
)
def test_the_cap_applies_to_the_endpoints_token_fields(token_fields, params, expected):
    route = resolve(SNAPSHOT, requested_model="gpt-4o", params=params, token_fields=token_fields)
    assert dict(route.params) == expected


def test_an_endpoint_with_one_token_field_never_renames_it():
    reasoning = ModelPolicy(name="o3", litellm_model="openai/o3", provider="openai", max_tokens=50)
    snapshot = PolicySnapshot(models={"o3": reasoning})
    assert reasoning.token_field == "max_completion_tokens"
    route = resolve(snapshot, requested_model="o3", params={"max_tokens": 500}, token_fields=("max_tokens",))
    assert dict(route.params) == {"max_tokens": 50}
    chat = resolve(snapshot, requested_model="o3", params={"max_tokens": 500})
    assert dict(chat.params) == {"max_completion_tokens": 50}


def test_reservation_reads_the_endpoints_output_field():
    route = resolve(SNAPSHOT, requested_model="gpt-4o", params={}, token_fields=("max_output_tokens",))
    messages = [{"role": "user", "content": "x" * 40}]
    assert token_reservation(route, messages, output_fields=("max_output_tokens",)) == 100 + 10 + 4


@pytest.mark.parametrize(
    ("key_list", "team_list", "usable"),
    [
        (None, None, {"gpt-4o", "fast", "claude", "smart", "uncapped"}),
        (None, {"gpt-4o", "claude"}, {"gpt-4o", "fast", "claude", "smart"}),
        ({"gpt-4o", "uncapped"}, None, {"gpt-4o", "fast", "uncapped"}),
        ({"gpt-4o", "uncapped"}, {"fast", "claude"}, {"gpt-4o", "fast"}),  # the team names the alias: its target
        ({"smart"}, {"claude"}, {"claude", "smart"}),  # the key names an alias, the team its target
        ({"claude"}, {"gpt-4o"}, set()),  # nothing in common: nothing at all, not "everything"
    ],
)
def test_a_key_may_use_what_both_its_own_list_and_its_teams_list_let_through(key_list, team_list, usable):
    key_allowlist = None if key_list is None else frozenset(key_list)
    team_allowlist = None if team_list is None else frozenset(team_list)
    assert set(visible_model_names(SNAPSHOT, key_allowlist, team_allowlist)) == usable
    for name in ["gpt-4o", "fast", "claude", "smart", "uncapped"]:
        if name in usable:
            resolve(SNAPSHOT, requested_model=name, params={}, allowlist=key_allowlist, team_allowlist=team_allowlist)
        else:
            with pytest.raises(ModelNotAllowed):
                resolve(SNAPSHOT, requested_model=name, params={}, allowlist=key_allowlist,
                        team_allowlist=team_allowlist)  # fmt: skip


def test_a_model_refused_by_the_team_says_it_is_the_teams_list():
    with pytest.raises(ModelNotAllowed) as refused:
        resolve(SNAPSHOT, requested_model="smart", params={}, team_allowlist=frozenset({"gpt-4o"}))
    assert refused.value.message == "This API key's team may not use the model 'smart'."
    assert refused.value.requested_model == "smart"
    with pytest.raises(ModelNotAllowed, match=r"^This API key may not use"):  # the key's own list is asked first
        resolve(SNAPSHOT, requested_model="smart", params={}, allowlist=frozenset({"gpt-4o"}),
                team_allowlist=frozenset({"gpt-4o"}))  # fmt: skip
