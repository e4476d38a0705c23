"""Admin users as they exist in a team: staff with some permissions, not superusers."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

PASSWORD = "correct-horse-battery-staple-42"


def staff_user(username: str, *permissions: str):
    """A staff user (not a superuser) holding exactly `permissions` ("app_label.codename")."""
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return get_user_model().objects.get(pk=user.pk)  # a fresh instance: no stale permission cache


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
