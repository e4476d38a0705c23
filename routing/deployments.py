"""Which deployment next: a pure function of a model's deployments, their health and a random source.

The call step (api.failover) asks once per model and walks the answer until one deployment answers or the first
byte has reached the client. Written here rather than with LiteLLM's Router: the Router only serves
`litellm.acompletion` (not the direct relay), keeps its cooldowns per process unless given its own Redis cache, never
cools down a model's only deployment, and costs a deep copy of its model list per call (see the issue note).
"""

import random
from collections.abc import Collection, Mapping, Sequence
from itertools import groupby

from routing.policy import ModelPolicy


def attempt_order(deployments: Sequence[ModelPolicy], cooldowns: Mapping[int, float], now: float,
                  rng: random.Random, saturated: Collection[int] = ()) -> list[ModelPolicy]:  # fmt: skip
    """The deployments to try, in order: the healthy ones, best priority first, by weight within a priority.

    `cooldowns`: deployment id -> when its cooldown ends; `saturated`: ids at their own rpm/tpm this minute (left
    out). When none is healthy: only the one whose cooldown ends first, so that a recovered provider is found
    without a retry storm; a model with a single deployment gets none until it recovers (the caller answers 503).
    `deployments` come best first (priority, then id), as the policy snapshot orders them.
    """
    if len(deployments) == 1 and not cooldowns and not saturated:  # the common case, at no cost
        return list(deployments)
    usable = [deployment for deployment in deployments if deployment.deployment_id not in saturated]
    healthy = [deployment for deployment in usable if cooldowns.get(deployment.deployment_id, 0.0) <= now]
    if healthy:
        order: list[ModelPolicy] = []
        for _, group in groupby(healthy, key=lambda deployment: deployment.priority):
            order += weighted_shuffle(list(group), rng)
        return order
    if len(deployments) == 1 or not usable:
        return []
    return [min(usable, key=lambda deployment: cooldowns[deployment.deployment_id])]


def weighted_shuffle(deployments: list[ModelPolicy], rng: random.Random) -> list[ModelPolicy]:
    """A random order in which each deployment comes first with probability weight / total weight
    (Efraimidis-Spirakis: sort by u ** (1 / weight))."""
    if len(deployments) == 1:
        return deployments
    return sorted(deployments, key=lambda deployment: rng.random() ** (1.0 / max(deployment.weight, 1)), reverse=True)


def cooldown_remaining(deployments: Sequence[ModelPolicy], cooldowns: Mapping[int, float], now: float) -> float:
    """Seconds until the first of `deployments` leaves its cooldown (0 when one is not cooling down)."""
    ends = [cooldowns.get(deployment.deployment_id, 0.0) for deployment in deployments]
    return max(0.0, min(ends, default=0.0) - now)
