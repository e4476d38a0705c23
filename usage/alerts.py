"""Budget alerts: the first time in a budget period that a key's or team's spend reaches its alert threshold, one
email goes to the people who answer for it, and the crossing is recorded.

Exactly once, across every worker and host: a process notices the crossing after settling a request (off the
request's path) and claims it by writing a BudgetAlert row; the row's unique constraint (subject and period) lets
one writer win, and only the winner sends the email. Each process also remembers what it already claimed, so past
the threshold a settle costs no database query.
"""

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from llmproxy_site.dbthread import run_in_db_thread

if TYPE_CHECKING:
    from usage.limits import Subject

logger = logging.getLogger(__name__)

MICRO = Decimal(1_000_000)
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Crossing:
    label: str  # "key" or "team"
    owner_id: int
    name: str
    team_id: int | None  # for a key: its team, whose admins hear of it
    period: str
    percent: int
    spent_usd: Decimal
    budget_usd: Decimal


def watches_budget(subject: "Subject") -> bool:
    return subject.record.alert_percent is not None and subject.record.max_budget_usd is not None


def crossing_of(subject: "Subject", spent_micro_usd: int | None) -> Crossing | None:
    """The alert this spend calls for, if it is at or past the subject's threshold."""
    record = subject.record
    if spent_micro_usd is None or not watches_budget(subject):
        return None
    budget = record.max_budget_usd
    spent = Decimal(spent_micro_usd) / MICRO
    if spent * 100 < budget * record.alert_percent:
        return None
    team = getattr(record, "team", None)
    return Crossing(
        label=subject.label,
        owner_id=record.id,
        name=record.name,
        team_id=record.id if subject.label == "team" else (team.id if team is not None else None),
        period=subject.period,
        percent=record.alert_percent,
        spent_usd=spent,
        budget_usd=budget,
    )


class BudgetAlerts:
    def __init__(self) -> None:
        self._claimed: set[tuple[str, int, str]] = set()  # what this process has already tried to claim

    async def note_spend(self, subjects: tuple["Subject", ...], spent: tuple[int | None, ...]) -> None:
        """After a settle: claim and send each alert the new spend calls for. Never raises."""
        for subject, micro in zip(subjects, spent, strict=True):
            crossing = crossing_of(subject, micro)
            if crossing is None or (crossing.label, crossing.owner_id, crossing.period) in self._claimed:
                continue
            if len(self._claimed) >= MAX_REMEMBERED:
                self._claimed.clear()  # forgetting costs one refused insert per subject, nothing more
            self._claimed.add((crossing.label, crossing.owner_id, crossing.period))
            try:
                await self._alert(crossing)
            except Exception:  # an alert must never disturb the gateway
                logger.exception("could not record or send the budget alert of %s %s", crossing.label, crossing.name)

    @staticmethod
    async def _alert(crossing: Crossing) -> None:
        """Claim, then send (in a plain thread: no database connection is held while the mail server answers),
        then note that it was sent."""
        claimed = await run_in_db_thread(claim_alert, crossing)
        if claimed is None:
            return
        alert_id, recipients = claimed
        if not recipients:
            logger.warning("budget alert for %s %s: nobody to email (no admin with an address)", crossing.label,
                           crossing.name)  # fmt: skip
            return
        subject, body = alert_message(crossing)
        await asyncio.to_thread(send_mail, subject, body, None, recipients)
        await run_in_db_thread(mark_sent, alert_id, recipients)
        logger.info("budget alert for %s %s sent to %s", crossing.label, crossing.name, ", ".join(recipients))


def claim_alert(crossing: Crossing) -> tuple[int, list[str]] | None:
    """Write the alert's row (one per subject and period) and return it with its recipients; None when another
    worker wrote it first (or the key or team is gone)."""
    from usage.models import BudgetAlert

    owner = {"team_id": crossing.owner_id} if crossing.label == "team" else {"api_key_id": crossing.owner_id}
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                subject=crossing.label,
                name=crossing.name,
                period=crossing.period,
                percent=crossing.percent,
                spent_usd=crossing.spent_usd.quantize(Decimal("0.000001")),
                budget_usd=crossing.budget_usd,
                **owner,
            )
    except IntegrityError:
        return None
    return alert.pk, alert_recipients(crossing)


def mark_sent(alert_id: int, recipients: list[str]) -> None:
    from usage.models import BudgetAlert

    BudgetAlert.objects.filter(pk=alert_id).update(sent_at=timezone.now(), recipients=", ".join(recipients))


def alert_recipients(crossing: Crossing) -> list[str]:
    """The team's admins (for a team, or for a key in a team); for a key without a team, whoever created it."""
    from keys.models import ApiKey
    from teams.models import Membership, Role

    if crossing.team_id is not None:
        admins = Membership.objects.filter(team_id=crossing.team_id, role=Role.ADMIN, user__is_active=True)
        emails = admins.values_list("user__email", flat=True)
    else:
        emails = ApiKey.objects.filter(pk=crossing.owner_id, created_by__is_active=True).values_list(
            "created_by__email", flat=True
        )
    return sorted({email for email in emails if email})


def period_words(period: str) -> str:
    kind, _, when = period.partition(":")
    return {"day": f"the day {when}", "month": f"the month {when}"}.get(kind, "its whole budget")


def alert_message(crossing: Crossing) -> tuple[str, str]:
    who = f"Team '{crossing.name}'" if crossing.label == "team" else f"API key '{crossing.name}'"
    share = crossing.spent_usd / crossing.budget_usd * 100 if crossing.budget_usd else Decimal(100)
    subject = f"[llmproxy] {who} has used {share:.0f}% of its budget"
    body = (
        f"{who} has spent ${crossing.spent_usd:.6f} of its ${crossing.budget_usd} budget for "
        f"{period_words(crossing.period)} ({share:.0f}%; the alert threshold is {crossing.percent}%).\n\n"
        "Requests are refused with 429 insufficient_quota once the whole budget is spent. "
        "This is the only alert for this budget period.\n"
    )
    return subject, body
