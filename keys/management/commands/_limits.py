"""Command-line options for per-key limits: the same as a team's (teams.management.limit_options)."""

from teams.management.limit_options import (
    add_limit_arguments,
    describe_limits,
    limits_from_options,
    parse_budget,
    parse_int_limit,
    parse_percent,
)

__all__ = [
    "add_limit_arguments",
    "describe_limits",
    "limits_from_options",
    "parse_budget",
    "parse_int_limit",
    "parse_percent",
]
