"""Command-line options for per-key limits, shared by create_api_key and set_api_key_limits."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import CommandError

NONE_WORDS = {"none", "off", "unlimited"}


def add_limit_arguments(parser) -> None:
    parser.add_argument("--rpm", help="Requests per minute ('none' removes the limit).")
    parser.add_argument("--tpm", help="Tokens per minute ('none' removes the limit).")
    parser.add_argument("--max-budget", help="Spend allowed per budget period, in USD ('none' removes it).")
    parser.add_argument("--budget-period", choices=["day", "month", "total"], default=None)


def parse_int_limit(option: str, value: str) -> int | None:
    if value.lower() in NONE_WORDS:
        return None
    if not value.isdigit() or int(value) < 1:
        raise CommandError(f"{option} expects a whole number of at least 1 (or 'none'), got '{value}'")
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
    return {
        "rpm_limit": missing if options.get("rpm") is None else parse_int_limit("--rpm", options["rpm"]),
        "tpm_limit": missing if options.get("tpm") is None else parse_int_limit("--tpm", options["tpm"]),
        "max_budget_usd": missing if options.get("max_budget") is None else parse_budget(options["max_budget"]),
        "budget_period": missing if options.get("budget_period") is None else options["budget_period"],
    }
