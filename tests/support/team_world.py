"""Two teams as a company has them, with everything the admin shows about a team: keys (one rotated, one revoked),
members, request-log rows and their daily rollup, budget alerts, audit entries, a failed login; and a key of no
team (the platform admins' own). Every name and figure of team "bravo" and of the platform key is unique, so a page
that shows one of them shows another team's data."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from keys.models import ApiKey
from keys.services import create_api_key, revoke_api_key, rotate_api_key
from lockout.models import FailedLogin
from routing.services import create_model
from teams.models import Team
from teams.services import add_team_member, create_team
from tests.support.admin_users import PASSWORD
from usage.models import BudgetAlert
from usage.recorder import write_rows

ALPHA_COST, ALPHA_TOKENS = Decimal("0.375"), 1333  # the alpha team's rows this month, together


@dataclass
class World:
    alpha: Team
    bravo: Team
    alpha_keys: list[ApiKey]
    bravo_keys: list[ApiKey]
    platform_key: ApiKey
    users: dict[str, object]
    forbidden: list[str] = field(default_factory=list)  # in no page a user of team alpha sees


def log_row(key: ApiKey, team: Team | None, model: str, prompt: int, completion: int, cost: str, **extra) -> dict:
    return {"created_at": timezone.now(), "api_key_id": key.pk, "key_name": key.name,
            "team_id": team.pk if team else None, "team_name": team.name if team else "", "requested_model": model,
            "resolved_model": model, "litellm_model": f"openai/{model}", "streamed": False, "status": 200,
            "error_code": "", "end_reason": "completed", "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "usage_estimated": False, "cost_usd": Decimal(cost),
            "latency_ms": 12.0, "ttft_ms": None, **extra}  # fmt: skip


def member(username: str, team: Team, role: str):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)
    add_team_member(team=team, user=user, role=role)
    return get_user_model().objects.get(pk=user.pk)


def audit(superuser, obj, message: str) -> None:
    LogEntry.objects.create(user=superuser, content_type=ContentType.objects.get_for_model(obj),
                            object_id=str(obj.pk), object_repr=str(obj)[:200], action_flag=CHANGE,
                            change_message=message)  # fmt: skip


def build_world(superuser) -> World:
    alpha = create_team(name="alphateam", rpm_limit=600, tpm_limit=200000, max_budget_usd=Decimal("500"),
                        budget_period="month", alert_percent=80)  # fmt: skip
    bravo = create_team(name="bravoteam", models=["bravo-secret-model"], rpm_limit=86420, tpm_limit=975310,
                        max_budget_usd=Decimal("7777.77"), alert_percent=90)  # fmt: skip
    alpha_keys = [create_api_key(name="alphakey-one", team=alpha, rpm_limit=60).api_key,
                  create_api_key(name="alphakey-two", team=alpha).api_key]  # fmt: skip
    bravo_keys = [create_api_key(name="bravokey-one", team=bravo, rpm_limit=86000, models=["bravo-secret-model"],
                                 max_budget_usd=Decimal("6666.66"), budget_period="month").api_key,
                  create_api_key(name="bravokey-rotated", team=bravo).api_key,
                  create_api_key(name="bravokey-revoked", team=bravo).api_key]  # fmt: skip
    rotate_api_key(name="bravokey-rotated", grace_hours=24)
    revoke_api_key(name="bravokey-revoked")
    platform_key = create_api_key(name="platformkey-solo", models=["platform-secret-model"]).api_key
    bravo_keys = [ApiKey.objects.get(pk=key.pk) for key in bravo_keys]
    for name in ("gpt-4o-mini", "bravo-secret-model", "platform-secret-model"):
        create_model(name, litellm_model=f"openai/{name}")
    users = {name: member(name, team, role) for name, team, role in [
        ("alpha-admin", alpha, "admin"), ("alpha-member", alpha, "member"), ("bravo-admin", bravo, "admin"),
        ("bravo-member", bravo, "member")]}  # fmt: skip
    write_rows([
        log_row(alpha_keys[0], alpha, "gpt-4o-mini", 1000, 200, "0.3125"),
        log_row(alpha_keys[1], alpha, "gpt-4o-mini", 111, 22, "0.0625", endpoint="embeddings"),
        log_row(bravo_keys[0], bravo, "bravo-secret-model", 918273, 645546, "637.48", deployment="bravo-deployment",
                error_code="", status=200),
        log_row(platform_key, None, "platform-secret-model", 313131, 424242, "271.82"),
    ])  # fmt: skip
    period = f"month:{date.today():%Y-%m}"
    BudgetAlert.objects.create(subject="team", team=alpha, name=alpha.name, period=period, percent=80,
                               spent_usd=Decimal("400.5"), budget_usd=Decimal("500"))  # fmt: skip
    BudgetAlert.objects.create(subject="team", team=bravo, name=bravo.name, period=period, percent=90,
                               spent_usd=Decimal("7000.123"), budget_usd=Decimal("7777.77"),
                               recipients="bravo-admin@example.com")  # fmt: skip
    BudgetAlert.objects.create(subject="key", team=bravo, api_key=bravo_keys[0], name=bravo_keys[0].name,
                               period=period, percent=90, spent_usd=Decimal("6000.5"),
                               budget_usd=Decimal("6666.66"))  # fmt: skip
    BudgetAlert.objects.create(subject="key", api_key=platform_key, name=platform_key.name, period=period,
                               percent=50, spent_usd=Decimal("135.91"), budget_usd=Decimal("271.82"))  # fmt: skip
    for obj in [*alpha_keys, alpha]:  # the team's own page's history shows the team's entries
        audit(superuser, obj, f"alpha audit entry about {obj}")
    for obj in [*bravo_keys, platform_key, bravo, users["bravo-admin"], users["alpha-member"]]:
        audit(superuser, obj, f"secret audit entry about {obj}")
    FailedLogin.objects.create(username="bravo-admin", ip_address="10.9.8.7")
    forbidden = [
        "bravoteam", "bravokey", "bravo-secret-model", "bravo-deployment", "bravo-admin", "bravo-member",
        "platformkey", "platform-secret-model", "secret audit entry",
        "918273", "918,273", "645546", "645,546", "1563819", "1,563,819", "637.48", "637,48",  # bravo's usage
        "86420", "86,420", "975310", "975,310", "7777.77", "6666.66", "7000.12", "6000.5",  # its limits, alerts
        "313131", "313,131", "424242", "424,242", "737373", "737,373", "271.82", "135.91",  # the platform key's
        "10.9.8.7",
    ]  # fmt: skip
    for key in [*bravo_keys, platform_key]:
        forbidden += [key.prefix, key.key_hash[:16]] + ([key.previous_prefix] if key.previous_prefix else [])
    return World(alpha, bravo, alpha_keys, bravo_keys, platform_key, users, forbidden)
