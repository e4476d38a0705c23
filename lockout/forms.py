import math

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from lockout.rules import Lockout, begin_attempt, client_address


def lockout_message(lockout: Lockout) -> str:
    minutes = max(1, math.ceil((lockout.until - timezone.now()).total_seconds() / 60))
    whom = "for this username" if lockout.across_addresses else "for this username from your address"
    return f"Too many failed login attempts {whom}. Login is locked; try again in {minutes} minute(s)."


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form: counts the attempt, then refuses it (before checking the password) when locked out."""

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username and password:  # only an attempt that would reach the password check counts
            lockout = begin_attempt(username=username, ip_address=client_address(self.request))
            if lockout is not None:
                raise ValidationError(lockout_message(lockout), code="locked_out")
        return super().clean()
