"""What a model name means for one request: a pure function of (policy snapshot, key allowlist, request)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.policy import ModelPolicy, PolicySnapshot

TOKEN_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens")


class ModelNotAllowed(Exception):
    def __init__(self, requested_model: str, message: str) -> None:
        super().__init__(message)
        self.requested_model = requested_model
        self.message = message


@dataclass(frozen=True)
class Route:
    requested_model: str
    model: ModelPolicy
    params: Mapping[str, Any]  # OpenAI parameters to send, token caps applied (no model, no messages)


def canonical_name(snapshot: PolicySnapshot, name: str) -> str:
    return snapshot.aliases.get(name, name)


def key_may_use(snapshot: PolicySnapshot, allowlist: frozenset[str] | None, model_name: str) -> bool:
    if allowlist is None:
        return True
    return any(canonical_name(snapshot, entry) == model_name for entry in allowlist)


def visible_model_names(snapshot: PolicySnapshot, allowlist: frozenset[str] | None) -> list[str]:
    """Models and aliases a key may call, for /v1/models."""
    names = [name for name in snapshot.models if key_may_use(snapshot, allowlist, name)]
    names += [
        alias
        for alias, target in snapshot.aliases.items()
        if target in snapshot.models and key_may_use(snapshot, allowlist, target)
    ]
    return sorted(names)


def cap_token_limits(params: Mapping[str, Any], cap: int | None) -> dict[str, Any]:
    capped = dict(params)
    if cap is None:
        return capped
    sent = [name for name in TOKEN_LIMIT_FIELDS if capped.get(name) is not None]
    for name in sent:
        capped[name] = min(capped[name], cap)
    if not sent:
        capped["max_tokens"] = cap
    return capped


def resolve(
    snapshot: PolicySnapshot,
    *,
    requested_model: str,
    params: Mapping[str, Any],
    allowlist: frozenset[str] | None = None,
) -> Route:
    model_name = canonical_name(snapshot, requested_model)
    model = snapshot.models.get(model_name)
    if model is None:
        raise ModelNotAllowed(requested_model, f"The model '{requested_model}' does not exist or is not allowed.")
    if not key_may_use(snapshot, allowlist, model_name):
        raise ModelNotAllowed(requested_model, f"This API key may not use the model '{requested_model}'.")
    return Route(requested_model=requested_model, model=model, params=cap_token_limits(params, model.max_tokens))
