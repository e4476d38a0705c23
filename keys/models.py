from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def parse_model_list(text: str) -> list[str]:
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


class BudgetPeriod(models.TextChoices):
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


class ApiKey(models.Model):
    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.TextField(
        blank=True,
        default="",
        help_text="Comma-separated model or alias names this key may use. Empty: every allowed model.",
    )
    rpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute. Empty: no limit.")
    tpm_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute. Empty: no limit.")
    max_budget_usd = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, help_text="Spend allowed per budget period (USD)."
    )
    budget_period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def model_allowlist(self) -> list[str]:
        return parse_model_list(self.allowed_models)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def has_limits(self) -> bool:
        return self.rpm_limit is not None or self.tpm_limit is not None or self.max_budget_usd is not None

    def clean(self) -> None:
        if self.rpm_limit == 0 or self.tpm_limit == 0:
            raise ValidationError("A limit of 0 would block the key: revoke it instead.")
        if self.max_budget_usd is not None and self.max_budget_usd < 0:
            raise ValidationError({"max_budget_usd": "A budget cannot be negative."})
        names = self.model_allowlist
        if len(set(names)) != len(names):
            raise ValidationError({"allowed_models": "A model is listed twice."})
        self.allowed_models = ",".join(names)
        if self.expires_at and not self.pk and self.expires_at <= timezone.now():
            raise ValidationError({"expires_at": "The expiry lies in the past."})
