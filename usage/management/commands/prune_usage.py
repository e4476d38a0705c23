from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from usage.models import LimitCounter, RequestLog


class Command(BaseCommand):
    help = "Delete request-log rows older than the retention (LLMPROXY_LOG_RETENTION_DAYS) and expired counters."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Keep this many days (default: the setting).")

    def handle(self, *args, days: int | None, **options) -> None:
        keep = settings.LLMPROXY_LOG_RETENTION_DAYS if days is None else days
        cutoff = timezone.now() - timedelta(days=keep)
        deleted, _ = RequestLog.objects.filter(created_at__lt=cutoff).delete()
        counters, _ = LimitCounter.objects.filter(expires_at__lt=timezone.now()).delete()
        self.stdout.write(f"deleted {deleted} request-log rows older than {keep} days and {counters} expired counters")
        self.stdout.write("the daily rollup is kept: dashboards and reports still cover the pruned days")
