from django.db import models
from django.utils import timezone


class FailedLogin(models.Model):
    """One failed admin login. Rows live in the database so every worker process sees the same count."""

    username = models.CharField(max_length=150)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    attempted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-attempted_at"]
        indexes = [models.Index(fields=["username", "ip_address", "attempted_at"])]
        verbose_name = "failed admin login"

    def __str__(self) -> str:
        return f"{self.username} from {self.ip_address or '?'}"
