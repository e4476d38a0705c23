"""What GET /metrics reads when it is scraped, handed to telemetry as plain values (telemetry imports no app).

- Deployment health: every enabled deployment of the policy, cooling down or not in this worker's view, which with
  REDIS_URL is the shared one (refreshed here at most every LLMPROXY_HEALTH_REFRESH_SECONDS); telemetry adds what
  the other workers of this host recorded.
- Remaining budgets: of every team with a budget (and, with LLMPROXY_METRICS_PER_KEY=1, every unrevoked key with
  one), as enforcement counts the period's spend: the budget counter (Redis or the database), or the daily rollup
  when the counter does not exist yet (a new period, a Redis restart), as the admin shows it.
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.db import DatabaseError
from django.utils import timezone

from api.gateway import gateway
from keys.lookup import KeyRecord
from keys.models import ApiKey
from llmproxy_site.dbthread import run_in_db_thread
from routing.policy import PolicySnapshot
from teams.models import Team
from teams.records import TeamRecord
from telemetry import metrics
from telemetry.metrics import BudgetValue, DeploymentHealthValue, ScrapeState
from usage.limits import enforced_spend
from usage.reports import period_start, recorded_spend

logger = logging.getLogger(__name__)


async def scrape_state() -> ScrapeState:
    deployments: tuple[DeploymentHealthValue, ...] = ()
    try:
        snapshot = await gateway.policy.current()
        await gateway.health.refresh_if_stale()
        deployments = deployment_health(snapshot, gateway.health.cooldowns())
    except DatabaseError as exc:  # no policy loaded yet and no database: nothing to report on
        logger.warning("/metrics: no policy to read deployments from (%s)", type(exc).__name__)
    try:
        budgets = await run_in_db_thread(remaining_budgets, per_key=metrics.PER_KEY)
    except Exception as exc:  # the database or Redis is down: the scrape still answers, without budgets
        logger.warning("/metrics: could not read budgets (%s)", type(exc).__name__)
        budgets = ()
    return ScrapeState(deployments=deployments, budgets=budgets)


def deployment_health(snapshot: PolicySnapshot, cooldowns: Mapping[int, float]) -> tuple[DeploymentHealthValue, ...]:
    return tuple(
        DeploymentHealthValue(model=name, deployment=deployment.deployment[:200], provider=deployment.provider or "",
                              cooling_until=cooldowns.get(deployment.deployment_id))
        for name, model in snapshot.models.items()
        for deployment in model.deployments
    )  # fmt: skip


def remaining_budgets(*, per_key: bool) -> tuple[BudgetValue, ...]:
    now = timezone.now()
    values = [
        budget_value(TeamRecord.from_model(team), now, team=team.name)
        for team in Team.objects.exclude(max_budget_usd=None).order_by("name")
    ]
    if per_key:
        keys = ApiKey.objects.filter(revoked_at=None).exclude(max_budget_usd=None).select_related("team")
        values += [
            budget_value(KeyRecord.from_model(key), now, team=key.team.name if key.team else "", key=key.name)
            for key in keys.order_by("name")
        ]
    return tuple(values)


def budget_value(record: KeyRecord | TeamRecord, now: datetime, *, team: str, key: str = "") -> BudgetValue:
    budget = record.max_budget_usd or Decimal(0)
    return BudgetValue(team=team, key=key, budget_usd=float(budget), remaining_usd=float(budget - spent(record, now)))


def spent(record: KeyRecord | TeamRecord, now: datetime) -> Decimal:
    try:
        enforced = enforced_spend(record, now)
    except Exception as exc:  # Redis unreachable: the rollup's figure (what a rebuilt bucket would hold)
        logger.warning("/metrics: could not read the budget counter of %s (%s)", record.name, type(exc).__name__)
        enforced = None
    if enforced is not None:
        return enforced
    owner = {"team_id": record.id} if isinstance(record, TeamRecord) else {"key_id": record.id}
    return recorded_spend(since=period_start(record.budget_period, now.date()), **owner)
