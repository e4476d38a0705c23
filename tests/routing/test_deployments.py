"""The pure choice of deployments (routing.deployments) and the resolver's per-deployment and fallback routes."""

import random
from collections import Counter
from dataclasses import replace

import pytest

from routing.deployments import attempt_order, cooldown_remaining, weighted_shuffle
from routing.policy import ModelPolicy, PolicySnapshot
from routing.resolver import ParameterRefused, fallback_route, resolve, served_by

NOW = 1_000_000.0


def deployment(deployment_id: int, *, priority: int = 0, weight: int = 1, **fields) -> ModelPolicy:
    fields.setdefault("litellm_model", "openai/gpt-4o")
    fields.setdefault("provider", "openai")
    return ModelPolicy(name="gpt-4o", deployment_id=deployment_id, deployment=f"gpt-4o#{deployment_id}",
                       priority=priority, weight=weight, **fields)  # fmt: skip


def ids(order: list[ModelPolicy]) -> list[int]:
    return [item.deployment_id for item in order]


def test_a_single_healthy_deployment_is_the_whole_order() -> None:
    only = deployment(1)
    assert attempt_order((only,), {}, NOW, random.Random(0)) == [only]


def test_best_priority_first_then_the_next() -> None:
    deployments = (deployment(1, priority=0), deployment(2, priority=0), deployment(3, priority=1))
    firsts = set()
    for seed in range(20):
        order = ids(attempt_order(deployments, {}, NOW, random.Random(seed)))
        assert sorted(order[:2]) == [1, 2] and order[2] == 3
        firsts.add(order[0])
    assert firsts == {1, 2}  # equal weights: either goes first


def test_cooling_deployments_are_skipped_and_come_back_when_their_cooldown_ends() -> None:
    deployments = (deployment(1), deployment(2, priority=1))
    assert ids(attempt_order(deployments, {1: NOW + 5}, NOW, random.Random(0))) == [2]
    assert ids(attempt_order(deployments, {1: NOW - 1}, NOW, random.Random(0))) == [1, 2]


def test_every_deployment_cooling_tries_only_the_one_whose_cooldown_ends_first() -> None:
    deployments = (deployment(1), deployment(2), deployment(3, priority=2))
    cooldowns = {1: NOW + 30, 2: NOW + 30, 3: NOW + 4}
    assert ids(attempt_order(deployments, cooldowns, NOW, random.Random(0))) == [3]
    assert cooldown_remaining(deployments, cooldowns, NOW) == pytest.approx(4)


def test_a_single_deployment_cooling_down_gets_no_attempt() -> None:
    assert attempt_order((deployment(1),), {1: NOW + 10}, NOW, random.Random(0)) == []
    assert cooldown_remaining((deployment(1),), {1: NOW + 10}, NOW) == pytest.approx(10)


def test_saturated_deployments_are_left_out() -> None:
    deployments = (deployment(1), deployment(2))
    assert ids(attempt_order(deployments, {}, NOW, random.Random(0), saturated={1})) == [2]
    assert attempt_order(deployments, {}, NOW, random.Random(0), saturated={1, 2}) == []


def test_weights_decide_who_goes_first_in_proportion() -> None:
    heavy, light = deployment(1, weight=3), deployment(2, weight=1)
    rng = random.Random(42)
    firsts = Counter(weighted_shuffle([heavy, light], rng)[0].deployment_id for _ in range(4000))
    assert firsts[1] / 4000 == pytest.approx(0.75, abs=0.03)  # about 4 standard deviations


def test_each_deployment_serves_with_its_own_token_field_and_refused_fields() -> None:
    openai_one = deployment(1, max_tokens=100)
    reasoning = deployment(2, litellm_model="openai/o3", max_tokens=100)
    anthropic = deployment(3, litellm_model="anthropic/claude-sonnet-4-5", provider="anthropic", max_tokens=100)
    model = replace(openai_one, deployments=(openai_one, reasoning, anthropic))
    snapshot = PolicySnapshot(models={"gpt-4o": model})
    route = resolve(snapshot, requested_model="gpt-4o", params={"max_tokens": 500}, extra={"reasoning_effort_x": 1})
    assert route.params == {"max_tokens": 100}
    assert served_by(route, reasoning).params == {"max_completion_tokens": 100}
    with pytest.raises(ParameterRefused):  # Anthropic takes only its own extra fields: not a candidate for this one
        served_by(route, anthropic)


def test_a_fallback_model_applies_its_own_cap_and_ignores_the_allowlist() -> None:
    primary = replace(deployment(1, max_tokens=100), fallbacks=("backup",))
    backup = ModelPolicy(name="backup", litellm_model="openai/gpt-4o-mini", provider="openai", max_tokens=7,
                         deployment_id=9)  # fmt: skip
    snapshot = PolicySnapshot(models={"gpt-4o": primary, "backup": backup}, aliases={"spare": "backup"})
    route = resolve(snapshot, requested_model="gpt-4o", params={"max_tokens": 50}, allowlist=frozenset({"gpt-4o"}))
    fallback = fallback_route(snapshot, route, "spare")
    assert fallback is not None
    assert fallback.model.name == "backup" and fallback.params == {"max_tokens": 7}
    assert fallback.requested_model == "gpt-4o"
    assert fallback_route(snapshot, route, "not-served") is None
