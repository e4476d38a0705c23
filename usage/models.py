from django.db import models


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

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["api_key", "created_at"]),
            models.Index(fields=["resolved_model", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.key_name or '-'} {self.resolved_model or '-'} {self.status}"


class DailyUsage(models.Model):
    """Per day, key, resolved model and endpoint: the rollup the dashboard and reports read."""

    day = models.DateField()
    endpoint = models.CharField(max_length=16, choices=EndpointName.choices, default=EndpointName.CHAT)
    api_key = models.ForeignKey("keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key_name = models.CharField(max_length=100, blank=True, default="")
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
            models.UniqueConstraint(fields=["day", "key_name", "model", "endpoint"], name="daily_usage_unique_endpoint")
        ]
        indexes = [models.Index(fields=["key_name", "day"]), models.Index(fields=["model", "day"])]


class LimitCounter(models.Model):
    """Rate-limit and budget counters when no Redis is configured (atomic upserts, shared by all workers)."""

    bucket = models.CharField(max_length=200, unique=True)
    value = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)
