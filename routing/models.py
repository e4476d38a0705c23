import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from routing.provider_keys import provider_key_var_refusal
from routing.providers import needs_api_base, resolve_provider


def optional_text(
    max_length: int, field_class: type[models.CharField] = models.CharField, **options: Any
) -> models.CharField:
    """Text the admin may leave empty, stored as "" (never NULL)."""
    return field_class(max_length=max_length, blank=True, default="", **options)


def optional_count(
    field_class: type[models.IntegerField] = models.PositiveIntegerField, **options: Any
) -> models.IntegerField:
    """A whole number of at least 1, or empty (NULL): no cap, no limit."""
    return field_class(null=True, blank=True, validators=[MinValueValidator(1)], **options)


class PolicyVersion(models.Model):
    token = models.CharField(max_length=32)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "policy version"


class AllowedModel(models.Model):
    name = models.CharField(
        max_length=200, unique=True, help_text="The model id clients send, e.g. gpt-4o-mini or claude-sonnet."
    )
    max_tokens = optional_count(help_text="Cap on output tokens per request, e.g. 4096. Empty: no cap.")
    num_retries = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        verbose_name="Retries",
        help_text="Retries before the first byte (LiteLLM), e.g. 2. Empty: the default.",
    )
    enabled = models.BooleanField(default=True)
    max_n = optional_count(
        models.PositiveSmallIntegerField,
        verbose_name="Most choices (n)",
        help_text="Most choices (n) one request may ask for, e.g. 1. Empty: what the provider allows.",
    )
    refused_params = optional_text(
        500,
        verbose_name="Refused parameters",
        help_text="Comma-separated request fields refused for this model with a 400, "
        "e.g. service_tier, web_search_options, audio (fields that change the price).",
    )
    fallbacks = optional_text(
        1000,
        help_text="Comma-separated models (or aliases) tried in order when every deployment of this one fails, "
        "e.g. gpt-4o-mini, claude-haiku.",
    )
    context_window_fallbacks = optional_text(
        1000,
        verbose_name="Context window fallbacks",
        help_text="Comma-separated models (or aliases) tried in order when the provider reports that the request "
        "exceeds the context window, e.g. gpt-4.1.",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "allowed model"
        permissions = [
            ("change_provider_settings", "Can change a model's API base and provider key variable"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def refused_param_names(self) -> frozenset[str]:
        return parse_param_names(self.refused_params)

    @property
    def fallback_names(self) -> tuple[str, ...]:
        return parse_model_names(self.fallbacks)

    @property
    def context_window_fallback_names(self) -> tuple[str, ...]:
        return parse_model_names(self.context_window_fallbacks)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.name and ModelAlias.objects.filter(alias=self.name).exists():
            errors["name"] = f"'{self.name}' is already an alias."
        bad = sorted(name for name in self.refused_param_names if not PARAM_NAME.fullmatch(name))
        if bad:
            errors["refused_params"] = f"'{bad[0]}' is not a request field name (e.g. service_tier, audio)."
        for field_name in ("fallbacks", "context_window_fallbacks"):
            names = parse_model_names(getattr(self, field_name))
            problem = self.fallback_problem(names)
            if problem:
                errors[field_name] = problem
            else:
                setattr(self, field_name, ", ".join(names))  # stored in one spelling: an import compares it
        if errors:
            raise ValidationError(errors)

    def fallback_problem(self, names: tuple[str, ...]) -> str | None:
        """Each name must be another allowed model or an alias of one, named once."""
        if not names:
            return None
        own_aliases = set(self.aliases.values_list("alias", flat=True)) if self.pk else set()
        if self.name in names or own_aliases & set(names):
            return "A model cannot fall back to itself."
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            return f"'{repeated[0]}' is named twice."
        known = {*AllowedModel.objects.filter(name__in=names).values_list("name", flat=True),
                 *ModelAlias.objects.filter(alias__in=names).values_list("alias", flat=True)}  # fmt: skip
        unknown = [name for name in names if name not in known]
        if unknown:
            return f"'{unknown[0]}' is neither an allowed model nor an alias."
        return None


class Deployment(models.Model):
    """One place that serves a model: a provider, its base URL, its key variable. A model has one or more."""

    model = models.ForeignKey(AllowedModel, on_delete=models.CASCADE, related_name="deployments")
    name = optional_text(
        100,
        help_text="A label for logs and the admin, e.g. azure-eastus. Empty: the model's name and the id.",
    )
    litellm_model = optional_text(
        200,
        verbose_name="LiteLLM model",
        help_text="LiteLLM model string, e.g. openai/gpt-4o or anthropic/claude-sonnet-4-5. Empty: the name.",
    )
    api_base = optional_text(
        500,
        models.URLField,
        verbose_name="API base",
        help_text="Provider base URL if not the default, e.g. https://my-vllm.internal:8000/v1 or "
        "https://myorg.openai.azure.com.",
    )
    api_key_env = optional_text(
        100,
        verbose_name="Provider key variable",
        help_text="NAME of the environment variable that holds the provider key (never the key itself), "
        "e.g. OPENAI_API_KEY.",
    )
    timeout_seconds = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1)],
        verbose_name="Timeout (seconds)",
        help_text="Provider timeout in seconds, e.g. 60. Empty: the default.",
    )
    use_litellm = models.BooleanField(
        default=False,
        verbose_name="Use LiteLLM",
        help_text="Always call through LiteLLM, even for an OpenAI-compatible provider that would be relayed directly.",
    )
    resolved_provider = optional_text(
        64,
        editable=False,
        verbose_name="provider",
        help_text="Worked out on save: workers never ask LiteLLM.",
    )
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Share of requests among deployments of one priority, e.g. 3 against another's 1.",
    )
    priority = models.PositiveSmallIntegerField(
        default=0,
        help_text="Lower is tried first (e.g. 0 before 1); a higher one serves only when every lower one fails.",
    )
    rpm = optional_count(
        verbose_name="RPM",
        help_text="Most requests a minute it is sent (its quota), e.g. 500. Empty: no limit.",
    )
    tpm = optional_count(
        verbose_name="TPM",
        help_text="Most tokens a minute it is sent (its quota), e.g. 200000. Empty: no limit.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["priority", "id"]
        verbose_name = "deployment"
        constraints = [
            models.UniqueConstraint(
                fields=["model", "name"],
                condition=~models.Q(name=""),
                name="routing_deployment_unique_name",
                violation_error_message="Another deployment of this model has this name.",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def model_name(self) -> str:
        try:
            return self.model.name
        except Deployment.model.RelatedObjectDoesNotExist:
            return ""

    @property
    def label(self) -> str:
        return self.name or f"{self.model_name}#{self.pk}"

    @property
    def effective_litellm_model(self) -> str:
        return self.litellm_model or self.model_name

    @property
    def provider(self) -> str | None:
        return resolve_provider(self.effective_litellm_model, self.api_base or None)

    def save(self, *args, **kwargs) -> None:
        self.resolved_provider = self.provider or ""
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "resolved_provider"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.api_key_env and not self.api_key_env.replace("_", "").isalnum():
            errors["api_key_env"] = "Give the NAME of an environment variable (letters, digits, _), not a secret."
        if self.api_key_env and (self.api_key_env.startswith(("sk-", "llmp_")) or len(self.api_key_env) > 64):
            errors["api_key_env"] = "This looks like a secret. Store the key in the environment and name the variable."
        if self.api_key_env and "api_key_env" not in errors:
            refusal = provider_key_var_refusal(self.api_key_env)
            if refusal is not None:
                errors["api_key_env"] = refusal
        errors.update(self.routing_problems())
        if self.effective_litellm_model and self.provider is None:
            errors["litellm_model"] = (
                f"No provider can route '{self.effective_litellm_model}': use a 'provider/model' string "
                "(e.g. openai/…, anthropic/…) or set an API base for an OpenAI-compatible server."
            )
        if errors:
            raise ValidationError(errors)

    def routing_problems(self) -> dict[str, str]:
        """Where a call would go wrong: a self-hosted provider with no api_base."""
        provider = self.provider
        if needs_api_base(provider) and not self.api_base:
            return {
                "litellm_model": (  # on this field: api_base may be read-only for the editor
                    f"A '{provider}' model is served by your own server: it needs an API base (without one, the "
                    "call would go to OpenAI's host or nowhere)."
                )
            }
        return {}


PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def parse_param_names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in (text or "").split(",") if name.strip())


def parse_model_names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


class ModelAlias(models.Model):
    alias = models.CharField(max_length=200, unique=True, help_text="A name clients may send instead, e.g. fast.")
    target = models.ForeignKey(AllowedModel, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        ordering = ["alias"]
        verbose_name = "model alias"
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.alias} → {self.target_id and self.target.name}"

    def clean(self) -> None:
        if self.alias and AllowedModel.objects.filter(name=self.alias).exists():
            raise ValidationError({"alias": f"'{self.alias}' is already the name of an allowed model."})
