"""The policy snapshot: an immutable picture of models and aliases, and the store that keeps it fresh."""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Prefetch

from llmproxy_site.dbthread import run_in_db_thread
from routing.models import AllowedModel, Deployment, ModelAlias
from routing.providers import (
    accepted_extra_fields,
    provider_model_name,
    resolve_provider,
    takes_max_completion_tokens,
)
from routing.versioning import fetch_policy_version, read_policy_version
from telemetry import metrics

logger = logging.getLogger(__name__)

OUTAGE_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ModelPolicy:
    """A model as one of its deployments serves it. `snapshot.models[name]` is the model as its first deployment
    (best priority, then oldest) serves it, with every enabled deployment in `deployments`; the call step picks
    among those (routing.deployments) and sends each attempt as that deployment's ModelPolicy."""

    name: str
    litellm_model: str
    provider: str | None
    api_base: str | None = None
    api_key_env: str | None = None
    max_tokens: int | None = None
    timeout_seconds: float = 600.0
    num_retries: int = 0
    use_litellm: bool = False
    max_n: int | None = None  # None: what the provider allows (the request schema stops at OpenAI's 128)
    refused_params: frozenset[str] = frozenset()
    # The deployment this view is served by, and the model's other deployments and fallbacks:
    deployment_id: int = 0  # the Deployment row (the key of its health)
    deployment: str = ""  # its label, as the request log and the admin show it
    weight: int = 1
    priority: int = 0
    rpm: int | None = None
    tpm: int | None = None
    deployments: tuple["ModelPolicy", ...] = ()  # every enabled deployment (each with deployments=()), best first
    fallbacks: tuple[str, ...] = ()  # models tried, in order, when every deployment failed
    context_window_fallbacks: tuple[str, ...] = ()  # models tried when the provider said the prompt was too long
    # Derived once per snapshot, so that no request asks LiteLLM (routing/providers.py has the rules):
    provider_model: str = field(init=False)  # the id the provider expects (LiteLLM's prefix stripped)
    token_field: str = field(init=False)  # the output-token field the model accepts
    extra_fields: frozenset[str] | None = field(init=False)  # non-OpenAI request fields it takes (None: any)

    def __post_init__(self) -> None:
        provider_model = provider_model_name(self.litellm_model, self.provider or "")
        object.__setattr__(self, "provider_model", provider_model)
        reasoning = takes_max_completion_tokens(provider_model, self.provider)
        object.__setattr__(self, "token_field", "max_completion_tokens" if reasoning else "max_tokens")
        object.__setattr__(self, "extra_fields", accepted_extra_fields(self.provider))


@dataclass(frozen=True)
class PolicySnapshot:
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)  # enabled models only
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> model name (possibly disabled)
    version: str | None = None


def build_policy_snapshot(version: str | None = None) -> PolicySnapshot:
    models = {}
    rows = AllowedModel.objects.filter(enabled=True).prefetch_related(
        Prefetch("deployments", queryset=Deployment.objects.filter(enabled=True).order_by("priority", "id"))
    )
    for row in rows:
        deployments = tuple(deployment_policy(row, deployment) for deployment in row.deployments.all())
        if not deployments:
            logger.warning("model %s has no enabled deployment: it is not served", row.name)
            continue
        models[row.name] = replace(
            deployments[0],
            deployments=deployments,
            fallbacks=row.fallback_names,
            context_window_fallbacks=row.context_window_fallback_names,
        )
    aliases = dict(ModelAlias.objects.values_list("alias", "target__name"))
    return PolicySnapshot(models=MappingProxyType(models), aliases=MappingProxyType(aliases), version=version)


def deployment_policy(model: AllowedModel, deployment: Deployment) -> ModelPolicy:
    litellm_model = deployment.effective_litellm_model
    return ModelPolicy(
        name=model.name,
        litellm_model=litellm_model,
        provider=deployment.resolved_provider or resolve_provider(litellm_model, deployment.api_base or None),
        api_base=deployment.api_base or None,
        api_key_env=deployment.api_key_env or None,
        max_tokens=model.max_tokens,
        timeout_seconds=deployment.timeout_seconds or settings.LLMPROXY_DEFAULT_TIMEOUT_SECONDS,
        num_retries=settings.LLMPROXY_DEFAULT_NUM_RETRIES if model.num_retries is None else model.num_retries,
        use_litellm=deployment.use_litellm,
        max_n=model.max_n,
        refused_params=model.refused_param_names,
        deployment_id=deployment.pk,
        deployment=deployment.label,
        weight=deployment.weight,
        priority=deployment.priority,
        rpm=deployment.rpm,
        tpm=deployment.tpm,
    )


def load_policy_snapshot() -> PolicySnapshot:
    version = read_policy_version()
    return build_policy_snapshot(version)


class PolicyStore:
    """Holds the current snapshot; checks the version row at most every `refresh_seconds`."""

    def __init__(self, *, refresh_seconds: float) -> None:
        self._refresh_seconds = refresh_seconds
        self._snapshot: PolicySnapshot | None = None
        self._next_check = 0.0
        self._refreshing = False

    async def current(self) -> PolicySnapshot:
        snapshot = self._snapshot
        now = time.monotonic()
        if snapshot is not None and (now < self._next_check or self._refreshing):
            return snapshot
        self._refreshing = True
        try:
            version = await fetch_policy_version()
            if snapshot is None or version != snapshot.version:
                snapshot = await run_in_db_thread(build_policy_snapshot, version)
                self._snapshot = snapshot
                metrics.policy_loaded([*snapshot.models, *snapshot.aliases])  # the names a model label may take
            self._next_check = time.monotonic() + self._refresh_seconds
            metrics.policy_checked()
        except DatabaseError as exc:
            if snapshot is None:
                raise
            # The database is down: keep serving the policy we have (an edit cannot be saved meanwhile either),
            # and look again after a pause rather than making every request wait for a connection.
            logger.warning("database unavailable (%s): serving the cached policy", type(exc).__name__)
            self._next_check = time.monotonic() + max(self._refresh_seconds, OUTAGE_RECHECK_SECONDS)
        finally:
            self._refreshing = False
        return snapshot

    def invalidate(self) -> None:
        self._snapshot = None
