"""The pure explanation of a route (routing.explain): each refusal reason, the alias, the caps per endpoint, the
deployments in order with a cooldown, and the path, checked against the resolver and the request path's own rules."""

import random
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from api.endpoints.messages import MessagesEndpoint
from api.endpoints.responses import ResponsesEndpoint
from api.provider import relayed
from api.translated import translates
from keys.lookup import KeyRecord, TeamRecord
from routing.deployments import attempt_order
from routing.explain import ANTHROPIC, DIRECT, LITELLM, TRANSLATED, as_dict, explain, explanation_lines, host_of
from routing.policy import ModelPolicy, PolicySnapshot
from routing.resolver import Route

NOW = 1_800_000_000.0


def deployment(model: str, deployment_id: int, **fields) -> ModelPolicy:
    fields.setdefault("litellm_model", f"openai/{model}")
    fields.setdefault("provider", "openai")
    return ModelPolicy(name=model, deployment_id=deployment_id, deployment=f"{model}#{deployment_id}", **fields)


def model(name: str, *deployments: ModelPolicy, **fields) -> ModelPolicy:
    deployments = deployments or (deployment(name, 1),)
    return replace(deployments[0], deployments=deployments, **fields)


def snapshot(*models: ModelPolicy, aliases: dict[str, str] | None = None) -> PolicySnapshot:
    return PolicySnapshot(models=MappingProxyType({m.name: m for m in models}),
                          aliases=MappingProxyType(aliases or {}))  # fmt: skip


def key(models: list[str] | None = None, team: TeamRecord | None = None, **fields) -> KeyRecord:
    fields = {"expires_at": None, "revoked": False, **fields}
    return KeyRecord(id=1, name="app", key_hash="x", allowed_models=frozenset(models) if models else None, team=team,
                     **fields)  # fmt: skip


def team(models: list[str] | None = None) -> TeamRecord:
    return TeamRecord(id=1, name="research", allowed_models=frozenset(models) if models else None)


def run(snap: PolicySnapshot, name: str, *, key_record=None, team_record=None, cooldowns=None, direct_relay=True,
        unserved=None, translated_path=True):  # fmt: skip
    return explain(snap, model_name=name, key=key_record, team=team_record, cooldowns=cooldowns or {}, now=NOW,
                   direct_relay=direct_relay, unserved=unserved, translated_path=translated_path)  # fmt: skip


GPT = model("gpt-4o", max_tokens=500)
NOT_IN_TEAM = "'gpt-4o' is not in the list of the team 'research' (claude)."


def test_an_alias_is_rewritten_and_the_route_is_allowed() -> None:
    result = run(snapshot(GPT, aliases={"smart": "gpt-4o"}), "smart", key_record=key(["smart"]))
    assert result.allowed and result.model_name == "gpt-4o"
    assert result.steps[0].name == "alias" and "'smart' is an alias of 'gpt-4o'" in result.steps[0].detail
    assert all(step.ok for step in result.steps)


@pytest.mark.parametrize(
    ("name", "key_record", "team_record", "unserved", "refusal"),
    [
        ("nope", None, None, None, "No enabled model is named 'nope'."),
        ("off", None, None, {"off": "the model is disabled"}, "'off' is not served: the model is disabled."),
        ("gpt-4o", key(["claude"]), None, None, "'gpt-4o' is not in the key's list (claude)."),
        ("gpt-4o", key(team=team(["claude"])), None, None, NOT_IN_TEAM),
        ("gpt-4o", None, team(["claude"]), None, NOT_IN_TEAM),
        ("gpt-4o", key(revoked=True), None, None, "The API key 'app' has been revoked."),
        ("gpt-4o", key(expires_at=datetime.fromtimestamp(NOW - 1, tz=UTC)), None, None,
         "The API key 'app' has expired."),
    ],
)  # fmt: skip
def test_each_refusal_says_why(name, key_record, team_record, unserved, refusal) -> None:
    result = run(snapshot(GPT), name, key_record=key_record, team_record=team_record, unserved=unserved)
    assert not result.allowed and result.refusal == refusal
    assert not result.deployments and not result.caps  # nothing of a model the caller may not use


def test_a_key_s_own_team_applies_not_the_team_given_beside_it() -> None:
    result = run(snapshot(GPT), "gpt-4o", key_record=key(team=team()), team_record=team(["claude"]))
    assert result.allowed


def test_caps_per_endpoint_and_refused_params() -> None:
    chat_model = model("gpt-4o", max_tokens=500, max_n=2, refused_params=frozenset({"audio", "service_tier"}))
    caps = {cap.endpoint: cap for cap in run(snapshot(chat_model), "gpt-4o").caps}
    assert (caps["chat"].field, caps["chat"].cap) == ("max_tokens", 500)
    assert (caps["responses"].field, caps["responses"].cap) == ("max_output_tokens", 500)
    assert (caps["messages"].field, caps["messages"].cap) == ("max_tokens", 500)
    result = run(snapshot(chat_model), "gpt-4o")
    assert result.refused_params == ("audio", "service_tier") and result.max_n == 2
    reasoning = model("o3", deployment("o3", 1, litellm_model="openai/o3"), max_tokens=900)
    chat = run(snapshot(reasoning), "o3").caps[0]
    assert (chat.field, chat.cap) == ("max_completion_tokens", 900) and "sent as max_completion_tokens" in chat.note
    uncapped = run(snapshot(model("free")), "free").caps
    assert all(cap.cap is None for cap in uncapped)


def test_deployments_in_priority_and_weight_order_with_a_cooldown() -> None:
    backup = deployment("gpt-4o", 3, priority=1)
    light, heavy = deployment("gpt-4o", 1, weight=1), deployment("gpt-4o", 2, weight=3)
    result = run(snapshot(model("gpt-4o", light, heavy, backup)), "gpt-4o", cooldowns={1: NOW + 30})
    assert [d.label for d in result.deployments] == ["gpt-4o#2", "gpt-4o#3", "gpt-4o#1"]
    assert [d.tried for d in result.deployments] == [True, True, False]
    assert result.deployments[2].cooling_until == NOW + 30
    text = "\n".join(explanation_lines(result, now=NOW))
    assert "cooling down until 2027-01-15T08:00:30+00:00 (in 30 s), not tried now" in text
    even = run(snapshot(model("gpt-4o", light, heavy, backup)), "gpt-4o")
    assert [d.share for d in even.deployments] == ["3 of 4 (75% first)", "1 of 4 (25% first)", "1 of 1 (100% first)"]


@pytest.mark.parametrize(
    "cooldowns", [{}, {1: NOW + 5}, {1: NOW + 5, 3: NOW + 9}, {1: NOW + 9, 2: NOW + 5, 3: NOW + 7}]
)
def test_the_deployments_tried_are_those_the_call_step_tries(cooldowns) -> None:
    policy = model("gpt-4o", deployment("gpt-4o", 1), deployment("gpt-4o", 2, weight=2),
                   deployment("gpt-4o", 3, priority=1))  # fmt: skip
    result = run(snapshot(policy), "gpt-4o", cooldowns=cooldowns)
    tried = {int(d.label.split("#")[1]) for d in result.deployments if d.tried}
    assert tried == {d.deployment_id for d in attempt_order(policy.deployments, cooldowns, NOW, random.Random(0))}


def test_when_none_is_healthy_only_the_first_to_recover_is_tried() -> None:
    both = model("gpt-4o", deployment("gpt-4o", 1), deployment("gpt-4o", 2))
    result = run(snapshot(both), "gpt-4o", cooldowns={1: NOW + 60, 2: NOW + 10})
    assert [(d.label, d.tried) for d in result.deployments] == [("gpt-4o#2", True), ("gpt-4o#1", False)]
    assert result.order_note == "none is healthy: only the one whose cooldown ends first is tried"
    only = run(snapshot(GPT), "gpt-4o", cooldowns={1: NOW + 10})
    assert not only.deployments[0].tried and "answers 503" in only.order_note


PATH_CASES = {
    "openai": deployment("m", 1),
    "openai, use_litellm": deployment("m", 1, use_litellm=True),
    "vllm at its base": deployment("m", 1, litellm_model="hosted_vllm/m", provider="hosted_vllm",
                                   api_base="http://vllm:8000/v1"),
    "openai_like at its base": deployment("m", 1, litellm_model="m", provider="openai_like",
                                          api_base="https://user:secret@llm.example.com:8443/v1?token=t"),
    "openai_like, no base": deployment("m", 1, litellm_model="m", provider="openai_like"),
    "anthropic": deployment("m", 1, litellm_model="anthropic/claude-sonnet-4", provider="anthropic"),
    "no provider": deployment("m", 1, litellm_model="mystery", provider=None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PATH_CASES))
@pytest.mark.parametrize("direct_relay", [True, False])
@pytest.mark.parametrize("translated_path", [True, False])
def test_the_path_is_the_one_each_endpoint_takes(case, direct_relay, translated_path, settings) -> None:
    settings.LLMPROXY_DIRECT_RELAY = direct_relay
    settings.LLMPROXY_TRANSLATED_PATH = translated_path
    policy = model("m", PATH_CASES[case])
    chat, responses, messages = run(snapshot(policy), "m", direct_relay=direct_relay,
                                    translated_path=translated_path).deployments[0].paths  # fmt: skip
    route = Route(requested_model="m", model=policy, params={})
    assert (chat.path == DIRECT) == relayed(policy), chat
    assert (chat.path == TRANSLATED) == translates(route), chat
    assert (responses.path == DIRECT) == ResponsesEndpoint().relays(route), responses
    assert (messages.path == ANTHROPIC) == MessagesEndpoint().relays(route), messages
    assert LITELLM in {chat.path, responses.path, messages.path} or policy.provider == "openai"


def test_the_reason_for_the_path() -> None:
    reasons = {case: run(snapshot(model("m", d)), "m").deployments[0].paths[0].reason
               for case, d in PATH_CASES.items()}  # fmt: skip
    assert reasons["openai"] == "OpenAI itself"
    assert reasons["openai, use_litellm"] == "the deployment is set to use LiteLLM"
    assert "hosted_vllm" in reasons["vllm at its base"] and "own API base" in reasons["vllm at its base"]
    assert reasons["openai_like, no base"] == "openai_like without an API base is never relayed to OpenAI"
    assert reasons["anthropic"].startswith("LiteLLM's anthropic configuration translates the request")
    translation_off = run(snapshot(model("m", PATH_CASES["anthropic"])), "m", translated_path=False)
    assert translation_off.deployments[0].paths[0].reason == "the translated path is off (LLMPROXY_TRANSLATED_PATH)"
    off = run(snapshot(model("m", PATH_CASES["openai"])), "m", direct_relay=False).deployments[0].paths[0]
    assert off.reason == "the direct relay is off (LLMPROXY_DIRECT_RELAY)"


def test_the_api_base_shows_its_host_only_and_hides_for_whoever_may_not_see_it() -> None:
    assert host_of("https://user:secret@llm.example.com:8443/v1?token=t") == "llm.example.com:8443"
    assert host_of(None) is None
    policy = model("m", replace(PATH_CASES["openai_like at its base"], api_key_env="LLM_KEY"))
    result = run(snapshot(policy), "m")
    shown = as_dict(result, provider_settings=True)["deployments"][0]
    assert (shown["api_base_host"], shown["key_variable"]) == ("llm.example.com:8443", "LLM_KEY")
    hidden = as_dict(result, provider_settings=False)
    assert hidden["deployments"][0]["api_base_host"] is None and hidden["deployments"][0]["key_variable"] is None
    text = "\n".join(explanation_lines(result, now=NOW, provider_settings=False))
    assert "secret" not in text and "llm.example.com" not in text and "LLM_KEY" not in text
    assert "secret" not in "\n".join(explanation_lines(result, now=NOW))


def test_fallbacks_are_listed_with_their_caps() -> None:
    mini = model("gpt-4o-mini", max_tokens=100)
    main = model("gpt-4o", fallbacks=("mini", "gone"), context_window_fallbacks=("gpt-4o-mini",))
    result = run(snapshot(main, mini, aliases={"mini": "gpt-4o-mini"}), "gpt-4o")
    assert [(f.name, f.served, f.cap) for f in result.fallbacks] == [("mini", True, 100), ("gone", False, None)]
    assert [f.name for f in result.context_window_fallbacks] == ["gpt-4o-mini"]
    text = "\n".join(explanation_lines(result, now=NOW))
    assert "Fallbacks: mini (openai, cap 100), gone (not served now)" in text
