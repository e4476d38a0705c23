from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from lockout.rules import clear_failures, client_address

# Failures are not recorded from user_login_failed: the login form counts every attempt before its password is
# checked (lockout.rules.begin_attempt), and a successful login takes its address's count back here.


@receiver(user_logged_in, dispatch_uid="lockout.clear_failures")
def on_logged_in(sender, request, user, **kwargs) -> None:
    if request is not None:
        clear_failures(username=user.get_username(), ip_address=client_address(request))
