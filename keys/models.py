from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def parse_model_list(text: str) -> list[str]:
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


class ApiKey(models.Model):
    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.TextField(
        blank=True,
        default="",
        help_text="Comma-separated model or alias names this key may use. Empty: every allowed model.",
    )
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

    def clean(self) -> None:
        names = self.model_allowlist
        if len(set(names)) != len(names):
            raise ValidationError({"allowed_models": "A model is listed twice."})
        self.allowed_models = ",".join(names)
        if self.expires_at and not self.pk and self.expires_at <= timezone.now():
            raise ValidationError({"expires_at": "The expiry lies in the past."})
