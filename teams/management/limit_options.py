"""Command-line options for limits, shared by the team and key commands (create_team, create_api_key, …)."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import CommandError

NONE_WORDS = {"none", "off", "unlimited"}


def add_limit_arguments(parser) -> None:
    parser.add_argument("--rpm", help="Requests per minute ('none' removes the limit).")
    parser.add_argument("--tpm", help="Tokens per minute ('none' removes the limit).")
    parser.add_argument("--max-budget", help="Spend allowed per budget period, in USD ('none' removes it).")
    parser.add_argument("--budget-period", choices=["day", "month", "total"], default=None)
    parser.add_argument(
        "--alert-percent", help="Email an alert when spend crosses this % of the budget, once per period (1-100)."
    )


def parse_int_limit(option: str, value: str) -> int | None:
    if value.lower() in NONE_WORDS:
        return None
    if not value.isdigit() or int(value) < 1:
        raise CommandError(f"{option} expects a whole number of at least 1 (or 'none'), got '{value}'")
    return int(value)


def parse_percent(value: str) -> int | None:
    if value.lower() in NONE_WORDS:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise CommandError(f"--alert-percent expects a whole number from 1 to 100 (or 'none'), got '{value}'")
    return int(value)


def parse_budget(value: str) -> Decimal | None:
    if value.lower() in NONE_WORDS:
        return None
    try:
        budget = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--max-budget expects an amount in USD, got '{value}'") from None
    if budget < 0 or not budget.is_finite():
        raise CommandError("--max-budget cannot be negative")
    return budget


def limits_from_options(options: dict, *, missing) -> dict:
    """The limits given on the command line by field name; `missing` for each option not given."""
    return {
        "rpm_limit": missing if options.get("rpm") is None else parse_int_limit("--rpm", options["rpm"]),
        "tpm_limit": missing if options.get("tpm") is None else parse_int_limit("--tpm", options["tpm"]),
        "max_budget_usd": missing if options.get("max_budget") is None else parse_budget(options["max_budget"]),
        "budget_period": missing if options.get("budget_period") is None else options["budget_period"],
        "alert_percent": missing if options.get("alert_percent") is None else parse_percent(options["alert_percent"]),
    }


def describe_limits(obj) -> str:
    """rpm=… tpm=… budget=… per …, alert at …% (a team or a key)."""
    budget = "-" if obj.max_budget_usd is None else f"{obj.max_budget_usd.normalize():f}"
    alert = f", alert at {obj.alert_percent}%" if obj.alert_percent is not None else ""
    return f"rpm={obj.rpm_limit or '-'} tpm={obj.tpm_limit or '-'} budget={budget} per {obj.budget_period}{alert}"
