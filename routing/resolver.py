"""What a model name means for one request: a pure function of (policy snapshot, key and team allowlists, request)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from routing.policy import ModelPolicy, PolicySnapshot

TOKEN_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens")  # Chat Completions' output-token fields
DEFAULT_OUTPUT_RESERVATION = 4096  # output tokens held for a request that names no limit (usage.limits' default)
NON_TEXT_PART_TOKENS = 765  # an image or audio part: a 1024x1024 high-detail image is 85 + 4 x 170 tokens
MESSAGE_OVERHEAD_TOKENS = 4


class ModelNotAllowed(Exception):
    def __init__(self, requested_model: str, message: str) -> None:
        super().__init__(message)
        self.requested_model = requested_model
        self.message = message


class ParameterRefused(Exception):
    """A request field this model does not take (the policy refuses it, or its provider cannot take it)."""

    def __init__(self, param: str, message: str, *, code: str = "unsupported_parameter") -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Route:
    requested_model: str
    model: ModelPolicy
    params: Mapping[str, Any]  # OpenAI parameters to send, token caps applied (no model, no messages)
    extra_body: Mapping[str, Any] = field(default_factory=dict)  # other fields to send, accepted for this provider
    sent_params: Mapping[str, Any] = field(default_factory=dict)  # the caller's parameters, before any cap
    token_fields: tuple[str, ...] = TOKEN_LIMIT_FIELDS  # the endpoint's output-token fields the cap applies to


def canonical_name(snapshot: PolicySnapshot, name: str) -> str:
    return snapshot.aliases.get(name, name)


def key_may_use(snapshot: PolicySnapshot, allowlist: frozenset[str] | None, model_name: str) -> bool:
    if allowlist is None:
        return True
    return any(canonical_name(snapshot, entry) == model_name for entry in allowlist)


def visible_model_names(snapshot: PolicySnapshot, allowlist: frozenset[str] | None,
                        team_allowlist: frozenset[str] | None = None) -> list[str]:  # fmt: skip
    """Models and aliases a key may call, for /v1/models: those both its own list and its team's let through."""

    def usable(name: str) -> bool:
        return key_may_use(snapshot, allowlist, name) and key_may_use(snapshot, team_allowlist, name)

    names = [name for name in snapshot.models if usable(name)]
    names += [alias for alias, target in snapshot.aliases.items() if target in snapshot.models and usable(target)]
    return sorted(names)


def cap_token_limits(params: Mapping[str, Any], cap: int | None, token_field: str = "max_tokens",
                     token_fields: Sequence[str] = TOKEN_LIMIT_FIELDS) -> dict[str, Any]:  # fmt: skip
    """Cap whichever of the endpoint's `token_fields` the caller sent, else add the cap as the field the model
    accepts (`token_field` when the endpoint has it, else the endpoint's first). No token fields: nothing capped."""
    capped = dict(params)
    if not token_fields:
        return capped
    if token_field not in token_fields:
        token_field = token_fields[0]
    elif token_field == "max_completion_tokens" and "max_tokens" in capped:
        sent = capped.pop("max_tokens")
        capped.setdefault("max_completion_tokens", sent)  # the caller's max_completion_tokens wins, as in LiteLLM
    if cap is None:
        return capped
    sent_fields = [name for name in token_fields if capped.get(name) is not None]
    for name in sent_fields:
        capped[name] = min(capped[name], cap)
    if not sent_fields:
        capped[token_field] = cap
    return capped


def check_fields(model: ModelPolicy, requested_model: str, params: Mapping[str, Any],
                 extra: Mapping[str, Any]) -> None:  # fmt: skip
    for name in sorted(model.refused_params):
        if name in params or name in extra:
            raise ParameterRefused(name, f"'{name}' is not accepted for the model '{requested_model}': remove it.")
    n = params.get("n")
    if model.max_n is not None and n is not None and n > model.max_n:
        raise ParameterRefused(
            "n", f"'n' may be at most {model.max_n} for the model '{requested_model}'.", code="integer_above_max_value"
        )
    accepted = model.extra_fields
    if accepted is None:
        return
    for name in sorted(extra):
        if name not in accepted:
            takes = f" (it takes {', '.join(sorted(accepted))})" if accepted else ""
            raise ParameterRefused(
                name,
                f"'{name}' is not a parameter the model '{requested_model}' accepts: its provider "
                f"({model.provider}) cannot take it{takes}. Remove it.",
            )


def resolve(
    snapshot: PolicySnapshot,
    *,
    requested_model: str,
    params: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    allowlist: frozenset[str] | None = None,
    team_allowlist: frozenset[str] | None = None,
    token_fields: Sequence[str] = TOKEN_LIMIT_FIELDS,
) -> Route:
    """`allowlist`: the key's own models, `team_allowlist`: its team's (None: no list); a model must pass both.
    `token_fields`: the request fields the model's output cap applies to on this endpoint (none: no cap)."""
    model_name = canonical_name(snapshot, requested_model)
    model = snapshot.models.get(model_name)
    if model is None:
        raise ModelNotAllowed(requested_model, f"The model '{requested_model}' does not exist or is not allowed.")
    if not key_may_use(snapshot, allowlist, model_name):
        raise ModelNotAllowed(requested_model, f"This API key may not use the model '{requested_model}'.")
    if not key_may_use(snapshot, team_allowlist, model_name):
        raise ModelNotAllowed(requested_model, f"This API key's team may not use the model '{requested_model}'.")
    route = Route(requested_model=requested_model, model=model, params=params, extra_body=extra or {},
                  sent_params=params, token_fields=tuple(token_fields))  # fmt: skip
    return served_by(route, model)


def served_by(route: Route, model: ModelPolicy) -> Route:
    """The route as `model` (one deployment of the route's model, or a fallback model) would serve it: that
    model's refused fields checked (ParameterRefused) and its cap applied to the caller's own parameters."""
    check_fields(model, route.requested_model, route.sent_params, route.extra_body)
    capped = cap_token_limits(route.sent_params, model.max_tokens, model.token_field, route.token_fields)
    return replace(route, model=model, params=capped)


def fallback_route(snapshot: PolicySnapshot, route: Route, model_name: str) -> Route | None:
    """The route to a fallback model (its own cap; the key's allowlist is not asked: the admin chose it), or None
    when that model is not served now."""
    model = snapshot.models.get(canonical_name(snapshot, model_name))
    return None if model is None else served_by(route, model)


def prompt_estimate(messages: Sequence[Any]) -> int:
    """Prompt tokens, cheaply: characters / 4 of the text, a flat figure per image or audio part."""
    characters = 0
    other_parts = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            characters += len(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str):
                    characters += len(text)
                else:
                    other_parts += 1
        for call in message.get("tool_calls") or ():
            arguments = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            characters += len(arguments) if isinstance(arguments, str) else 0
    return characters // 4 + other_parts * NON_TEXT_PART_TOKENS + MESSAGE_OVERHEAD_TOKENS * len(messages)


def token_reservation(route: Route, messages: Sequence[Any],
                      output_fields: Sequence[str] = ("max_completion_tokens", "max_tokens")) -> int:  # fmt: skip
    """Tokens-per-minute held at admission: every choice may reach the output limit, plus the prompt.

    `output_fields`: the endpoint's output-limit fields, the first one sent wins."""
    output_limit = next((route.params[name] for name in output_fields if route.params.get(name)), None)
    choices = route.params.get("n") or 1
    return choices * (output_limit or DEFAULT_OUTPUT_RESERVATION) + prompt_estimate(messages)
