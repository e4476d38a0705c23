"""Why a model name goes where it goes, for one key or team: each step of a request's route, without calling anyone.

A pure function of the policy snapshot, the key and team records and the deployments' cooldowns, the same data the
request path uses (routing.resolver, routing.deployments, api.provider.relayed), so `manage.py explain_route` and
the admin's "Explain a route" page say what the gateway would do. Provider settings are reduced to the API base's
host; a provider key, or the value of its variable, is never part of an explanation.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from routing.policy import ModelPolicy, PolicySnapshot
from routing.providers import OPENAI_WIRE_PROVIDERS, TRANSLATED_PROVIDERS, relayable
from routing.resolver import ModelNotAllowed, canonical_name, key_may_use, resolve

if TYPE_CHECKING:  # routing does not depend on keys: only their records' shape
    from keys.lookup import KeyRecord, TeamRecord

RESPONSES_RELAYED_PROVIDERS = frozenset({"openai", "hosted_vllm"})  # as api.endpoints.responses.RELAYED_PROVIDERS
DIRECT, LITELLM, ANTHROPIC = "direct relay", "LiteLLM", "Anthropic relay"
TRANSLATED = "translated"  # LiteLLM's provider configuration over the relay's client (api/translated.py)


@dataclass(frozen=True)
class Step:
    name: str  # "alias", "gateway", "key", "team"
    ok: bool
    detail: str


@dataclass(frozen=True)
class Cap:
    endpoint: str  # chat, responses, messages
    field: str
    cap: int | None
    note: str


@dataclass(frozen=True)
class Path:
    endpoints: str  # "chat, embeddings", "responses", "messages"
    path: str  # DIRECT, TRANSLATED, LITELLM or ANTHROPIC
    reason: str


@dataclass(frozen=True)
class DeploymentStep:
    label: str
    provider: str
    litellm_model: str
    api_base_host: str | None  # provider settings: only for whoever may see them
    key_variable: str | None  # the variable's name, never its value
    priority: int
    weight: int
    share: str  # "2 of 3 (67% first)" among the healthy deployments of its priority
    cooling_until: float | None
    tried: bool  # in the order the gateway would try now
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class FallbackStep:
    name: str
    served: bool
    cap: int | None
    provider: str | None


@dataclass(frozen=True)
class Explanation:
    requested_model: str
    model_name: str
    allowed: bool
    refusal: str | None  # the message a caller would get
    steps: tuple[Step, ...]
    caps: tuple[Cap, ...] = ()
    refused_params: tuple[str, ...] = ()
    max_n: int | None = None
    extra_fields: tuple[str, ...] | None = None  # None: any non-OpenAI field goes in the body
    deployments: tuple[DeploymentStep, ...] = ()
    order_note: str = ""
    fallbacks: tuple[FallbackStep, ...] = ()
    context_window_fallbacks: tuple[FallbackStep, ...] = ()


def explain(
    snapshot: PolicySnapshot,
    *,
    model_name: str,
    key: "KeyRecord | None",
    team: "TeamRecord | None",
    cooldowns: Mapping[int, float],
    now: float,
    direct_relay: bool,
    unserved: Mapping[str, str] | None = None,
    translated_path: bool = True,
) -> Explanation:
    """`team`: the team whose list applies when there is no key (a key's own team applies otherwise); `unserved`:
    model name -> why a model the snapshot leaves out is not served ("disabled", "no enabled deployment")."""
    team = key.team if key is not None else team
    canonical = canonical_name(snapshot, model_name)
    steps = []
    if canonical != model_name:
        steps.append(Step("alias", True, f"'{model_name}' is an alias of '{canonical}'"))
    steps += access_steps(snapshot, canonical, key, team, unserved or {}, now)
    refusal = next((step.detail for step in steps if not step.ok), None)
    if refusal is None:
        try:
            allowlist = key.allowed_models if key else None
            team_allowlist = team.allowed_models if team else None
            resolve(snapshot, requested_model=model_name, params={}, allowlist=allowlist, team_allowlist=team_allowlist)
        except ModelNotAllowed as exc:  # the steps above say the same; this keeps them honest
            refusal = exc.message
    model = snapshot.models.get(canonical)
    if refusal is not None or model is None:
        return Explanation(model_name, canonical, False, refusal, tuple(steps))
    deployments, order_note = deployment_steps(model, cooldowns, now, direct_relay, translated_path)
    return Explanation(
        requested_model=model_name,
        model_name=canonical,
        allowed=True,
        refusal=None,
        steps=tuple(steps),
        caps=token_caps(model),
        refused_params=tuple(sorted(model.refused_params)),
        max_n=model.max_n,
        extra_fields=None if model.extra_fields is None else tuple(sorted(model.extra_fields)),
        deployments=deployments,
        order_note=order_note,
        fallbacks=tuple(fallback_step(snapshot, name) for name in model.fallbacks),
        context_window_fallbacks=tuple(fallback_step(snapshot, name) for name in model.context_window_fallbacks),
    )


def access_steps(
    snapshot: PolicySnapshot,
    name: str,
    key: "KeyRecord | None",
    team: "TeamRecord | None",
    unserved: Mapping[str, str],
    now: float,
) -> list[Step]:
    steps = []
    if key is not None and key.revoked:
        steps.append(Step("key", False, f"The API key '{key.name}' has been revoked."))
    elif key is not None and key.expires_at is not None and key.expires_at.timestamp() <= now:
        steps.append(Step("key", False, f"The API key '{key.name}' has expired."))
    if name in snapshot.models:
        steps.append(Step("gateway", True, f"'{name}' is an enabled model"))
    else:
        why = unserved.get(name)
        detail = f"'{name}' is not served: {why}" if why else f"no enabled model is named '{name}'"
        steps.append(Step("gateway", False, detail[0].upper() + detail[1:] + "."))
    if key is not None:
        listed = key.allowed_models
        if listed is None:
            steps.append(Step("key", True, f"the key '{key.name}' has no model list of its own"))
        elif key_may_use(snapshot, listed, name):
            steps.append(Step("key", True, f"'{name}' is in the key's list ({', '.join(sorted(listed))})"))
        else:
            steps.append(Step("key", False, f"'{name}' is not in the key's list ({', '.join(sorted(listed))})."))
    if team is None:
        steps.append(Step("team", True, "no team: only the gateway's list and the key's apply"))
    elif team.allowed_models is None:
        steps.append(Step("team", True, f"the team '{team.name}' may use every model the gateway serves"))
    elif key_may_use(snapshot, team.allowed_models, name):
        steps.append(Step("team", True, f"'{name}' is in the list of the team '{team.name}'"))
    else:
        listed = ", ".join(sorted(team.allowed_models))
        steps.append(Step("team", False, f"'{name}' is not in the list of the team '{team.name}' ({listed})."))
    return steps


def token_caps(model: ModelPolicy) -> tuple[Cap, ...]:
    cap = model.max_tokens
    if model.token_field == "max_completion_tokens":
        chat_note = "max_tokens is sent as max_completion_tokens: this model takes only that field"
    else:
        chat_note = "either field the caller sends is capped"
    if cap is not None:
        chat_note += f"; a request without one is sent {model.token_field}={cap}"
    return (
        Cap("chat", model.token_field, cap, chat_note),
        Cap("responses", "max_output_tokens", cap, "" if cap is None else f"added as {cap} when not sent"),
        Cap("messages", "max_tokens", cap, "required by the Messages API; capped"),
    )


def deployment_steps(
    model: ModelPolicy, cooldowns: Mapping[int, float], now: float, direct_relay: bool, translated_path: bool = True
) -> tuple[tuple[DeploymentStep, ...], str]:
    """Best priority first, heaviest first within one, cooling ones after; as routing.deployments.attempt_order
    picks them (it shuffles by weight within a priority: `share` is each one's chance to be first)."""
    deployments = model.deployments or (model,)
    healthy = [d for d in deployments if cooldowns.get(d.deployment_id, 0.0) <= now]
    cooling = sorted((d for d in deployments if d not in healthy), key=lambda d: cooldowns[d.deployment_id])
    ordered = []
    for _, group in groupby(healthy, key=lambda d: d.priority):
        members = sorted(group, key=lambda d: -d.weight)
        total = sum(max(d.weight, 1) for d in members)
        ordered += [
            (d, f"{max(d.weight, 1)} of {total} ({round(100 * max(d.weight, 1) / total)}% first)") for d in members
        ]
    ordered += [(d, "-") for d in cooling]
    tried = {d.deployment_id for d in healthy}
    if healthy:
        note = "healthy deployments are tried in this order, shuffled by weight within a priority"
    elif len(deployments) == 1:
        note = "its only deployment is cooling down: the gateway answers 503 until it recovers"
    else:
        tried = {cooling[0].deployment_id}
        note = "none is healthy: only the one whose cooldown ends first is tried"
    steps = tuple(
        DeploymentStep(
            label=d.deployment,
            provider=d.provider or "none: cannot be routed",
            litellm_model=d.litellm_model,
            api_base_host=host_of(d.api_base),
            key_variable=d.api_key_env,
            priority=d.priority,
            weight=d.weight,
            share=share,
            cooling_until=cooldowns.get(d.deployment_id) if d not in healthy else None,
            tried=d.deployment_id in tried,
            paths=paths(d, direct_relay, translated_path),
        )
        for d, share in ordered
    )
    return steps, note


def host_of(api_base: str | None) -> str | None:
    """The API base's host and port: never its user, password, path or query (a token may hide in any)."""
    if not api_base:
        return None
    parts = urlsplit(api_base if "//" in api_base else f"//{api_base}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return None if not parts.hostname else parts.hostname + (f":{port}" if port else "")


def paths(model: ModelPolicy, direct_relay: bool, translated_path: bool = True) -> tuple[Path, ...]:
    """The path per endpoint, by the rules of api.provider.relayed, api.translated and each endpoint's `relays`."""
    chat = chat_path(model, direct_relay, translated_path)
    if chat.path == TRANSLATED:  # chat only: the Responses endpoint takes LiteLLM's own bridge
        responses = Path("responses", LITELLM, f"{model.provider} does not speak OpenAI's wire format")
    elif chat.path == DIRECT and model.provider not in RESPONSES_RELAYED_PROVIDERS:
        responses = Path("responses", LITELLM, f"{model.provider} is not known to serve /responses")
    else:
        responses = Path("responses", chat.path, chat.reason)
    if model.provider == "anthropic":
        messages = Path("messages", ANTHROPIC, "Anthropic models are relayed natively on /v1/messages")
    else:
        messages = Path("messages", LITELLM, "LiteLLM's Anthropic adapter translates the request")
    return chat, responses, messages


def chat_path(model: ModelPolicy, direct_relay: bool, translated_path: bool = True) -> Path:
    endpoints = "chat, embeddings"
    if model.provider is None:
        return Path(endpoints, LITELLM, "no provider: the model cannot be routed")
    if model.use_litellm:
        return Path(endpoints, LITELLM, "the deployment is set to use LiteLLM")
    if model.provider in TRANSLATED_PROVIDERS:
        if not direct_relay:
            return Path("chat", LITELLM, "the direct relay is off (LLMPROXY_DIRECT_RELAY), and with it the translation")
        if not translated_path:
            return Path("chat", LITELLM, "the translated path is off (LLMPROXY_TRANSLATED_PATH)")
        return Path("chat", TRANSLATED, f"LiteLLM's {model.provider} configuration translates the request, sent over "
                    "the relay's pooled client (a request with fields outside the translated set goes through "
                    "LiteLLM)")  # fmt: skip
    if not relayable(model.provider, model.api_base):
        if model.provider in OPENAI_WIRE_PROVIDERS:
            return Path(endpoints, LITELLM, f"{model.provider} without an API base is never relayed to OpenAI")
        return Path(endpoints, LITELLM, f"{model.provider} does not speak OpenAI's wire format")
    if not direct_relay:
        return Path(endpoints, LITELLM, "the direct relay is off (LLMPROXY_DIRECT_RELAY)")
    if model.provider == "openai" and not model.api_base:
        return Path(endpoints, DIRECT, "OpenAI itself")
    return Path(endpoints, DIRECT, f"an OpenAI-wire server ({model.provider}) at its own API base")


def fallback_step(snapshot: PolicySnapshot, name: str) -> FallbackStep:
    model = snapshot.models.get(canonical_name(snapshot, name))
    if model is None:
        return FallbackStep(name, False, None, None)
    return FallbackStep(name, True, model.max_tokens, model.provider)


def as_dict(explanation: Explanation, *, provider_settings: bool) -> dict[str, Any]:
    """The explanation as plain data; without `provider_settings` no API base host and no key variable name."""
    data = asdict(explanation)
    for deployment in data["deployments"]:
        deployment["cooling_until"] = iso_time(deployment["cooling_until"])
        if not provider_settings:
            deployment["api_base_host"] = deployment["key_variable"] = None
    return data


def iso_time(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")


def health_text(step: DeploymentStep, now: float, health_note: str | None = None) -> str:
    """`health_note`: why the shared health is unknown (no Redis, Redis down): then only that is said."""
    if health_note:
        return "per process" if health_note.startswith("per process") else "unknown"
    if step.cooling_until is None:
        return "healthy"
    return f"cooling down until {iso_time(step.cooling_until)} (in {max(1, round(step.cooling_until - now))} s)"


def explanation_lines(
    explanation: Explanation, *, now: float, health_note: str | None = None, provider_settings: bool = True
) -> list[str]:
    """The explanation as readable text (the command's output)."""
    lines = [f"Model: {explanation.requested_model}"]
    lines += [f"  [{'ok' if step.ok else 'REFUSED'}] {step.name}: {step.detail}" for step in explanation.steps]
    if not explanation.allowed:
        lines.append(f"Refused: {explanation.refusal}")
        return lines
    lines.append(f"Allowed: served as '{explanation.model_name}'")
    lines.append("Token caps:")
    for cap in explanation.caps:
        limit = "no cap" if cap.cap is None else f"at most {cap.cap}"
        lines.append(f"  {cap.endpoint}: {cap.field} {limit}" + (f" ({cap.note})" if cap.note else ""))
    lines.append(f"Refused parameters: {', '.join(explanation.refused_params) or 'none'}")
    max_n = explanation.max_n
    lines.append(f"n: at most {max_n}" if max_n is not None else "n: no limit of its own")
    extra = explanation.extra_fields
    lines.append("Other fields: " + ("any, in the body" if extra is None else ", ".join(extra) or "none"))
    lines.append(f"Deployments ({explanation.order_note}):")
    if health_note:
        lines.append(f"  health: {health_note}")
    for index, step in enumerate(explanation.deployments, 1):
        skipped = "" if step.tried else ", not tried now"
        lines.append(
            f"  {index}. {step.label}: {step.provider} {step.litellm_model}, priority {step.priority}, "
            f"weight {step.share}, {health_text(step, now, health_note)}{skipped}"
        )
        if provider_settings and (step.api_base_host or step.key_variable):
            lines.append(
                f"     API base host: {step.api_base_host or 'the provider default'}; "
                f"key variable: {step.key_variable or 'the provider default'}"
            )
        lines += [f"     {path.endpoints}: {path.path} ({path.reason})" for path in step.paths]
    for title, fallbacks in (
        ("Fallbacks", explanation.fallbacks),
        ("Context-window fallbacks", explanation.context_window_fallbacks),
    ):
        described = [
            f"{f.name} ({f.provider}, cap {f.cap or 'none'})" if f.served else f"{f.name} (not served now)"
            for f in fallbacks
        ]
        lines.append(f"{title}: {', '.join(described) or 'none'}")
    return lines
