import math

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from lockout.rules import client_address, locked_until


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, refusing (before checking the password) while the username+address is locked out."""

    def clean(self):
        until = locked_until(username=self.data.get("username"), ip_address=client_address(self.request))
        if until is not None:
            minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
            raise ValidationError(
                "Too many failed login attempts for this username from your address. "
                f"Login is locked; try again in {minutes} minute(s).",
                code="locked_out",
            )
        return super().clean()
