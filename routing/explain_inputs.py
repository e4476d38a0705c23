"""What an explanation (routing.explain) is made of, read from the database and Redis: for the explain_route command
and the admin's "Explain a route" page, which must say the same."""

import time
from dataclasses import dataclass

from django.conf import settings

from keys.lookup import KeyRecord, TeamRecord
from keys.models import ApiKey
from routing.explain import Explanation, explain
from routing.health import HealthUnavailable, read_health
from routing.models import AllowedModel
from routing.policy import PolicySnapshot, build_policy_snapshot
from teams.models import Team

PER_PROCESS = "per process: each gateway process keeps its own cooldowns (set REDIS_URL to see them here)"


@dataclass(frozen=True)
class Explained:
    explanation: Explanation
    now: float
    health_note: str | None  # None: the shared health was read


def unserved_models() -> dict[str, str]:
    """Model name -> why the policy snapshot leaves it out."""
    reasons = {}
    for model in AllowedModel.objects.prefetch_related("deployments"):
        if not model.enabled:
            reasons[model.name] = "the model is disabled"
        elif not any(deployment.enabled for deployment in model.deployments.all()):
            reasons[model.name] = "it has no enabled deployment"
    return reasons


def cooldowns_of(snapshot: PolicySnapshot, model_name: str) -> tuple[dict[int, float], str | None]:
    """The shared cooldowns of the model's deployments, and a note when they are unknown (no Redis, Redis down)."""
    model = snapshot.models.get(snapshot.aliases.get(model_name, model_name))
    ids = [deployment.deployment_id for deployment in model.deployments] if model is not None else []
    try:
        health = read_health(ids, redis_url=settings.REDIS_URL, prefix=settings.LLMPROXY_REDIS_PREFIX)
    except HealthUnavailable as exc:
        return {}, f"unknown: {exc}"
    if health is None:
        return {}, PER_PROCESS
    return {pk: state.cooling_until for pk, state in health.items() if state.cooling_until is not None}, None


def explain_for(*, model_name: str, api_key: ApiKey | None = None, team: Team | None = None) -> Explained:
    snapshot = build_policy_snapshot()
    cooldowns, note = cooldowns_of(snapshot, model_name)
    now = time.time()
    key_record = KeyRecord.from_model(api_key) if api_key is not None else None
    team_record = TeamRecord.from_model(team) if team is not None and api_key is None else None
    explanation = explain(snapshot, model_name=model_name, key=key_record, team=team_record, cooldowns=cooldowns,
                          now=now, direct_relay=settings.LLMPROXY_DIRECT_RELAY,
                          translated_path=settings.LLMPROXY_TRANSLATED_PATH, unserved=unserved_models())  # fmt: skip
    return Explained(explanation, now, note)
