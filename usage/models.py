from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone


class EndReason(models.TextChoices):
    COMPLETED = "completed"
    PROVIDER_ERROR = "provider_error"
    CLIENT_DISCONNECTED = "client_disconnected"
    REJECTED = "rejected"
    TIMEOUT = "timeout"


class EndpointName(models.TextChoices):
    """The API a request came through (api/endpoints/: one adapter each)."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    MESSAGES = "messages"


class RequestLog(models.Model):
    """One row per API request (chat, embeddings, responses, messages), written in batches off the request path."""

    created_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=16, choices=EndpointName.choices, default=EndpointName.CHAT)
    api_key = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key_name = models.CharField(max_length=100, blank=True, default="")
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    team_name = models.CharField(max_length=100, blank=True, default="", help_text="The key's team at the time")
    requested_model = models.CharField(max_length=200, blank=True, default="")
    resolved_model = models.CharField(max_length=200, blank=True, default="")
    litellm_model = models.CharField(max_length=200, blank=True, default="")
    streamed = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True, default="")
    end_reason = models.CharField(max_length=32, choices=EndReason.choices)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0, help_text="Prompt tokens read from the provider's cache")
    cache_write_tokens = models.PositiveIntegerField(default=0, help_text="Prompt tokens written to the provider cache")
    usage_estimated = models.BooleanField(default=False)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    latency_ms = models.FloatField()
    ttft_ms = models.FloatField(null=True, blank=True)
    deployment = models.CharField(max_length=200, blank=True, default="", help_text="The deployment that answered")
    attempts = models.PositiveSmallIntegerField(default=1, help_text="Provider calls made (more than 1: failover)")
    fallback_model = models.CharField(
        max_length=200, blank=True, default="", help_text="The fallback model that answered, if one did"
    )
    # The database default lets a replica of the previous version (which names no request_id) keep writing rows
    # while a rolling upgrade is under way.
    request_id = models.CharField(
        max_length=128, blank=True, default="", db_default="", help_text="The x-request-id the gateway answered with"
    )
    admin_test = models.BooleanField(
        default=False, db_default=False, help_text='Sent from the admin\'s "Send a test request", not by an app'
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["api_key", "created_at"]),
            models.Index(fields=["team", "created_at"]),
            models.Index(fields=["resolved_model", "created_at"]),
            models.Index(fields=["request_id"], name="usage_reqlog_request_id"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.key_name or '-'} {self.resolved_model or '-'} {self.status}"


class DailyUsage(models.Model):
    """Per day, key (by id: a renamed key keeps its history), team, resolved model and endpoint: the rollup the
    dashboard, reports and budget rebuilds read."""

    day = models.DateField()
    endpoint = models.CharField(max_length=16, choices=EndpointName.choices, default=EndpointName.CHAT)
    api_key = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key_name = models.CharField(max_length=100, blank=True, default="")
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    team_name = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=8, default=0)

    class Meta:
        ordering = ["-day", "key_name", "model", "endpoint"]
        verbose_name = "usage dashboard"
        verbose_name_plural = "usage dashboard"
        constraints = [
            # NULL ids are coalesced so that rows of no key or no team still meet the constraint on every database.
            models.UniqueConstraint(
                F("day"),
                Coalesce("api_key", Value(0)),
                F("key_name"),
                Coalesce("team", Value(0)),
                F("model"),
                F("endpoint"),
                name="daily_usage_unique_key_team",
            )
        ]
        indexes = [
            models.Index(fields=["key_name", "day"]),
            models.Index(fields=["model", "day"]),
            models.Index(fields=["team", "day"]),
        ]


class LimitCounter(models.Model):
    """Rate-limit and budget counters when no Redis is configured (atomic upserts, shared by all workers)."""

    bucket = models.CharField(max_length=200, unique=True)
    value = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)


class AlertSubject(models.TextChoices):
    KEY = "key"
    TEAM = "team"


class BudgetAlert(models.Model):
    """A budget alert threshold crossed: one row, and one email, per key or team and budget period."""

    subject = models.CharField(max_length=8, choices=AlertSubject.choices)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100, help_text="The key's or team's name when the alert was sent")
    period = models.CharField(max_length=32, help_text="The budget period: day:YYYY-MM-DD, month:YYYY-MM or total")
    percent = models.PositiveSmallIntegerField(help_text="The alert threshold, in % of the budget")
    spent_usd = models.DecimalField(max_digits=14, decimal_places=6)
    budget_usd = models.DecimalField(max_digits=14, decimal_places=6)
    recipients = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="Empty: nobody to email, or sending failed")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "period"], condition=Q(subject="team"), name="one_team_budget_alert_per_period"
            ),
            models.UniqueConstraint(
                fields=["api_key", "period"], condition=Q(subject="key"), name="one_key_budget_alert_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.name}: {self.percent}% of ${self.budget_usd} ({self.period})"
