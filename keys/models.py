from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from teams.models import (
    ALERT_PERCENT_VALIDATORS,
    BudgetPeriod,
    Team,
    clean_limits,
    parse_model_list,
)

__all__ = ["ApiKey", "BudgetPeriod", "parse_model_list"]


class ApiKey(models.Model):
    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.TextField(
        blank=True,
        default="",
        help_text="Comma-separated model or alias names this key may use. Empty: every allowed model.",
    )
    rpm_limit = models.PositiveIntegerField(
        "requests per minute", null=True, blank=True, help_text="For example 600. Empty: no limit."
    )
    tpm_limit = models.PositiveIntegerField(
        "tokens per minute", null=True, blank=True, help_text="Prompt and answer tokens, e.g. 200000. Empty: no limit."
    )
    max_budget_usd = models.DecimalField(
        "budget (USD)",
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Spend allowed per budget period, e.g. 50. Empty: no budget.",
    )
    budget_period = models.CharField(
        "budget period", max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="keys",
        help_text="The team the key belongs to: its models and limits apply on top of the key's own.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False, related_name="+"
    )
    alert_percent = models.PositiveSmallIntegerField(
        "budget alert at (%)",
        null=True,
        blank=True,
        validators=ALERT_PERCENT_VALIDATORS,
        help_text="Email once per budget period when the key's spend crosses this % of its budget.",
    )
    # Rotation keeps one row: the replaced secret stays valid until previous_expires_at (the grace period).
    previous_key_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    previous_prefix = models.CharField(max_length=16, blank=True, default="", editable=False)
    previous_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def model_allowlist(self) -> list[str]:
        return parse_model_list(self.allowed_models)

    @property
    def previous_valid_until(self):
        """When the secret replaced at the last rotation stops working (None: there is none)."""
        if self.previous_key_hash is None or self.previous_expires_at is None:
            return None
        if self.expires_at is not None:
            return min(self.previous_expires_at, self.expires_at)
        return self.previous_expires_at

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def has_limits(self) -> bool:
        return self.rpm_limit is not None or self.tpm_limit is not None or self.max_budget_usd is not None

    def clean(self) -> None:
        clean_limits(self)
        if self.expires_at and not self.pk and self.expires_at <= timezone.now():
            raise ValidationError({"expires_at": "The expiry lies in the past."})
        if self.team_id is not None:
            self.clean_against_team(self.team)

    def clean_against_team(self, team: Team) -> None:
        """A key cannot be given more than its team has."""
        problems = {}
        for field, label in (("rpm_limit", "requests per minute"), ("tpm_limit", "tokens per minute")):
            mine, theirs = getattr(self, field), getattr(team, field)
            if theirs is not None and mine is not None and mine > theirs:
                problems[field] = f"At most {theirs} {label}: the team '{team.name}' has no more."
        if (
            team.max_budget_usd is not None
            and self.max_budget_usd is not None
            and self.budget_period == team.budget_period
            and self.max_budget_usd > team.max_budget_usd
        ):
            problems["max_budget_usd"] = (
                f"At most {team.max_budget_usd.normalize():f} USD per {team.budget_period}: "
                f"the team '{team.name}' has no more."
            )
        if problems:
            raise ValidationError(problems)
