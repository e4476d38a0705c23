from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "teams"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Teams and members"

    def ready(self) -> None:
        from teams import signals  # noqa: F401  (connects receivers)
