import re

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from routing.provider_keys import provider_key_var_refusal
from routing.providers import needs_api_base, resolve_provider


class PolicyVersion(models.Model):
    token = models.CharField(max_length=32)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "policy version"


class AllowedModel(models.Model):
    name = models.CharField(max_length=200, unique=True, help_text="The model id clients send.")
    litellm_model = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="LiteLLM model string, e.g. openai/gpt-4o or anthropic/claude-sonnet-4-5. Empty: the name.",
    )
    api_base = models.URLField(
        max_length=500, blank=True, default="", help_text="Provider base URL, if not the default."
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="NAME of the environment variable that holds the provider key (never the key itself).",
    )
    max_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Cap on output tokens per request."
    )
    timeout_seconds = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.1)], help_text="Provider timeout. Empty: the default."
    )
    num_retries = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Retries before the first byte (LiteLLM). Empty: the default."
    )
    enabled = models.BooleanField(default=True)
    resolved_provider = models.CharField(
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text="Worked out on save: workers never ask LiteLLM.",
    )
    use_litellm = models.BooleanField(
        default=False,
        help_text="Always call through LiteLLM, even for an OpenAI-compatible provider that would be relayed directly.",
    )
    max_n = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Most choices (n) one request may ask for. Empty: what the provider allows.",
    )
    refused_params = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Comma-separated request fields refused for this model with a 400, "
        "e.g. service_tier, web_search_options, audio (fields that change the price).",
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
    def effective_litellm_model(self) -> str:
        return self.litellm_model or self.name

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
        if self.name and ModelAlias.objects.filter(alias=self.name).exists():
            errors["name"] = f"'{self.name}' is already an alias."
        errors.update(self.routing_problems())
        if self.name and self.provider is None:
            errors["litellm_model"] = (
                f"No provider can route '{self.effective_litellm_model}': use a 'provider/model' string "
                "(e.g. openai/…, anthropic/…) or set an API base for an OpenAI-compatible server."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def refused_param_names(self) -> frozenset[str]:
        return parse_param_names(self.refused_params)

    def routing_problems(self) -> dict[str, str]:
        """Where a call would go wrong: a self-hosted provider with no api_base, a refused field that is no name."""
        problems: dict[str, str] = {}
        provider = self.provider
        if needs_api_base(provider) and not self.api_base:
            problems["litellm_model"] = (  # on this field: api_base may be read-only for the editor
                f"A '{provider}' model is served by your own server: it needs an API base (without one, the "
                "call would go to OpenAI's host or nowhere)."
            )
        bad = sorted(name for name in self.refused_param_names if not PARAM_NAME.fullmatch(name))
        if bad:
            problems["refused_params"] = f"'{bad[0]}' is not a request field name (e.g. service_tier, audio)."
        return problems


PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def parse_param_names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in (text or "").split(",") if name.strip())


class ModelAlias(models.Model):
    alias = models.CharField(max_length=200, unique=True, help_text="A name clients may send instead.")
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
