from django.core.management.base import BaseCommand

from routing.policy_io import dump_policy_yaml, export_policy


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Print the policy (models, aliases, teams) as YAML that import_policy reads back unchanged."

    def handle(self, *args, **options) -> None:
        self.stdout.write(dump_policy_yaml(export_policy()), ending="")
