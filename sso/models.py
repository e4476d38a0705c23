from django.conf import settings
from django.db import models
from django.utils import timezone


class OidcIdentity(models.Model):
    """The account an OpenID Connect subject logs in as: matched on (issuer, sub), never on email or username."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, help_text="The provider's `sub` claim: stable, never reassigned.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="one_user_per_oidc_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
