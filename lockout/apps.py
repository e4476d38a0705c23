from django.apps import AppConfig


class LockoutConfig(AppConfig):
    name = "lockout"
    verbose_name = "Admin login lockout"

    def ready(self) -> None:
        from lockout import signals  # noqa: F401  (connects receivers)
