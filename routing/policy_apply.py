"""Previewing and applying a policy file: what `import_policy --dry-run` and the admin's "Import policy" page call.

A preview computes the diff (routing/policy_diff.py) and runs the real import in a transaction that is always rolled
back, so a problem only the database finds (a fallback naming no model, a team with keys that --prune would delete)
is shown before anything is applied. Applying runs the same import in one transaction and records one audit entry.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from routing.models import PolicyVersion
from routing.policy_diff import PolicyDiff, diff_policy
from routing.policy_io import PolicyFileError, export_policy, import_policy
from routing.versioning import VERSION_ROW_ID, bump_policy_version

VIA = "via policy import"


class _RolledBack(Exception):
    pass


@dataclass(frozen=True)
class Preview:
    diff: PolicyDiff
    error: str | None  # the problem the import would stop at: nothing of the file would be applied


def preview_policy(data: dict[str, Any], *, prune: bool) -> Preview:
    """The diff of a file's data (as read_policy_file or validate_policy_data return it) against the database, and
    the first problem the import would stop at; changes nothing."""
    diff = diff_policy(export_policy(), data, prune=prune)
    try:
        refuse_pruned_targets(data, prune=prune)
        with transaction.atomic():
            import_policy(data, prune=prune)
            raise _RolledBack
    except _RolledBack:
        return Preview(diff, None)
    except PolicyFileError as exc:
        return Preview(diff, str(exc))


@transaction.atomic
def apply_policy(data: dict[str, Any], *, prune: bool, user_id: int) -> PolicyDiff:
    """Import the file's (validated) data in one transaction and record what changed as one audit entry."""
    diff = diff_policy(export_policy(), data, prune=prune)
    refuse_pruned_targets(data, prune=prune)
    import_policy(data, prune=prune)
    if diff:
        bump_policy_version()  # the row exists even when only teams changed
        version = PolicyVersion.objects.get(pk=VERSION_ROW_ID)
        fields = [f"Policy import: {diff.summary()}", *audit_lines(diff), VIA]
        LogEntry.objects.create(
            user_id=user_id,
            content_type=ContentType.objects.get_for_model(PolicyVersion),
            object_id=str(version.pk),
            object_repr="policy",
            action_flag=CHANGE,
            change_message=json.dumps([{"changed": {"fields": fields}}]),
        )
    return diff


def refuse_pruned_targets(data: dict[str, Any], *, prune: bool) -> None:
    """With prune, an alias of a model the file does not name would lose its target (the import would fail)."""
    for alias, target in data["aliases"].items():
        if prune and target not in data["models"]:
            raise PolicyFileError(f"aliases.{alias}: its model '{target}' is not in the file, so it would be removed.")


def audit_lines(diff: PolicyDiff) -> list[str]:
    lines = []
    for change in diff.changes:
        details = "; ".join(one.describe() for one in change.fields)
        lines.append(change.describe() + (f" ({details})" if details else ""))
    return lines
