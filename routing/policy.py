"""The policy snapshot: an immutable picture of models and aliases, and the store that keeps it fresh."""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from django.conf import settings
from django.db import DatabaseError

from llmproxy_site.dbthread import run_in_db_thread
from routing.models import AllowedModel, ModelAlias
from routing.providers import (
    accepted_extra_fields,
    provider_model_name,
    resolve_provider,
    takes_max_completion_tokens,
)
from routing.versioning import fetch_policy_version, read_policy_version

logger = logging.getLogger(__name__)

OUTAGE_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ModelPolicy:
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
    default_timeout = settings.LLMPROXY_DEFAULT_TIMEOUT_SECONDS
    default_retries = settings.LLMPROXY_DEFAULT_NUM_RETRIES
    models = {}
    for row in AllowedModel.objects.filter(enabled=True):
        litellm_model = row.effective_litellm_model
        models[row.name] = ModelPolicy(
            name=row.name,
            litellm_model=litellm_model,
            provider=row.resolved_provider or resolve_provider(litellm_model, row.api_base or None),
            api_base=row.api_base or None,
            api_key_env=row.api_key_env or None,
            max_tokens=row.max_tokens,
            timeout_seconds=row.timeout_seconds or default_timeout,
            num_retries=default_retries if row.num_retries is None else row.num_retries,
            use_litellm=row.use_litellm,
            max_n=row.max_n,
            refused_params=row.refused_param_names,
        )
    aliases = dict(ModelAlias.objects.values_list("alias", "target__name"))
    return PolicySnapshot(models=MappingProxyType(models), aliases=MappingProxyType(aliases), version=version)


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
            self._next_check = time.monotonic() + self._refresh_seconds
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
