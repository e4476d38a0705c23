from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


def parse_model_list(text: str) -> list[str]:
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


class BudgetPeriod(models.TextChoices):
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


ALERT_PERCENT_VALIDATORS = [MinValueValidator(1), MaxValueValidator(100)]
ALERT_PERCENT_HELP = "Email the team's admins once per budget period when spend crosses this % of the budget."


def clean_limits(instance: "Team | models.Model") -> None:
    """The rules a team's and a key's limits share (ApiKey.clean calls this too)."""
    if instance.rpm_limit == 0 or instance.tpm_limit == 0:
        raise ValidationError("A limit of 0 would block every request: leave it empty for no limit.")
    if instance.max_budget_usd is not None and instance.max_budget_usd < 0:
        raise ValidationError({"max_budget_usd": "A budget cannot be negative."})
    names = parse_model_list(instance.allowed_models)
    if len(set(names)) != len(names):
        raise ValidationError({"allowed_models": "A model is listed twice."})
    instance.allowed_models = ",".join(names)


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    allowed_models = models.TextField(
        blank=True,
        default="",
        help_text="Comma-separated model or alias names the team's keys may use. Empty: every allowed model.",
    )
    rpm_limit = models.PositiveIntegerField(
        "requests per minute",
        null=True,
        blank=True,
        help_text="All the team's keys together, e.g. 600. Empty: no limit.",
    )
    tpm_limit = models.PositiveIntegerField(
        "tokens per minute",
        null=True,
        blank=True,
        help_text="All the team's keys together, e.g. 200000. Empty: no limit.",
    )
    max_budget_usd = models.DecimalField(
        "budget (USD)",
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Spend allowed per budget period (USD), all the team's keys together.",
    )
    budget_period = models.CharField(
        "budget period", max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH
    )
    alert_percent = models.PositiveSmallIntegerField(
        "budget alert at (%)", null=True, blank=True, validators=ALERT_PERCENT_VALIDATORS, help_text=ALERT_PERCENT_HELP
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def model_allowlist(self) -> list[str]:
        return parse_model_list(self.allowed_models)

    @property
    def has_limits(self) -> bool:
        return self.rpm_limit is not None or self.tpm_limit is not None or self.max_budget_usd is not None

    def clean(self) -> None:
        clean_limits(self)


class Role(models.TextChoices):
    ADMIN = "admin"
    MEMBER = "member"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(
        max_length=8,
        choices=Role.choices,
        default=Role.MEMBER,
        help_text="admin: manages the team's keys; member: reads the team's usage.",
    )

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_user_and_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"
