"""A team as the request path sees it: an immutable record held by each worker's key cache."""

from dataclasses import dataclass
from decimal import Decimal

from teams.models import Team, parse_model_list


@dataclass(frozen=True)
class TeamRecord:
    id: int
    name: str
    allowed_models: frozenset[str] | None  # None: every model the gateway allows
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_budget_usd: Decimal | None = None
    budget_period: str = "month"
    alert_percent: int | None = None

    @property
    def has_limits(self) -> bool:
        return self.rpm_limit is not None or self.tpm_limit is not None or self.max_budget_usd is not None

    @classmethod
    def from_model(cls, team: Team) -> "TeamRecord":
        names = parse_model_list(team.allowed_models)
        return cls(
            id=team.pk,
            name=team.name,
            allowed_models=frozenset(names) if names else None,
            rpm_limit=team.rpm_limit,
            tpm_limit=team.tpm_limit,
            max_budget_usd=team.max_budget_usd,
            budget_period=team.budget_period,
            alert_percent=team.alert_percent,
        )
