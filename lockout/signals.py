from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from lockout.rules import clear_failures, client_address, record_failure


@receiver(user_login_failed, dispatch_uid="lockout.record_failure")
def on_login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    if request is None:  # authenticate() outside a request (a shell): nothing to throttle
        return
    record_failure(username=credentials.get("username"), ip_address=client_address(request))


@receiver(user_logged_in, dispatch_uid="lockout.clear_failures")
def on_logged_in(sender, request, user, **kwargs) -> None:
    if request is not None:
        clear_failures(username=user.get_username(), ip_address=client_address(request))
