"""Concrete admin change messages: "what changed" as old → new values, never a secret.

Django's admin writes a LogEntry for every add, change and delete; its own change message names the changed fields
only. `AuditedAdminMixin` keeps the same JSON structure (so the admin's History page and the LogEntry admin render
it) but each field entry reads "Max tokens: 5 → 100".
"""

import contextlib
from datetime import date, datetime
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import models
from django.forms import BaseForm
from django.utils import timezone
from django.utils.translation import override as translation_override

EMPTY = "(empty)"
ARROW = "→"
MAX_VALUE_LENGTH = 120
REDACTED = "(changed; value not recorded)"


def format_value(value: Any) -> str:
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset, models.QuerySet)):
        return ", ".join(format_value(item) for item in value)
    text = str(value)
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 1] + "…"


def format_change(label: str, old: Any, new: Any) -> str:
    return f"{label}: {format_value(old)} {ARROW} {format_value(new)}"


def changed_fields(form: BaseForm, names: list[str], *, redacted: frozenset[str] = frozenset()) -> list[str]:
    """One "Label: old → new" string per changed form field; redacted fields say only that they changed."""
    entries = []
    for name in names:
        field = form.fields.get(name)
        if field is None:
            continue
        with translation_override(None):  # stored untranslated, as Django does; translated when shown
            label = str(field.label or name.replace("_", " ").capitalize())
        if name in redacted:
            entries.append(f"{label} {REDACTED}")
            continue
        old = form.get_initial_for_field(field, name)
        with contextlib.suppress(ValidationError, TypeError, ValueError):
            old = field.to_python(old)  # a pk becomes its object, "5" becomes 5
        entries.append(format_change(label, old, form.cleaned_data.get(name)))
    return entries


class AuditedAdminMixin:
    """For a ModelAdmin: change messages (form, list_editable and inlines) record old → new values.

    `audit_redacted_fields` names fields whose values must never reach the audit trail.
    """

    audit_redacted_fields: tuple[str, ...] = ()

    def construct_change_message(self, request, form, formsets, add=False) -> list[dict]:
        redacted = frozenset(self.audit_redacted_fields)
        message: list[dict] = []
        if add:
            message.append({"added": {}})
        elif form.changed_data:
            message.append({"changed": {"fields": changed_fields(form, form.changed_data, redacted=redacted)}})
        for formset in formsets or ():
            message.extend(describe_formset(formset, redacted=redacted))
        return message

    def log_changed_values(self, request, obj: models.Model, changes: list[tuple[str, Any, Any]], *, via: str) -> None:
        """A LogEntry for a change made outside the change form (an admin action)."""
        fields = [format_change(label, old, new) for label, old, new in changes] + [f"via {via}"]
        LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=[obj],
            action_flag=CHANGE,
            change_message=[{"changed": {"fields": fields}}],
            single_object=True,
        )


def describe_formset(formset, *, redacted: frozenset[str]) -> list[dict]:
    entries: list[dict] = []
    forms_by_pk = {form.instance.pk: form for form in formset.initial_forms}
    for obj in formset.new_objects:
        entries.append({"added": {"name": str(obj._meta.verbose_name), "object": str(obj)}})
    for obj, names in formset.changed_objects:
        form = forms_by_pk.get(obj.pk)
        fields = changed_fields(form, names, redacted=redacted) if form is not None else list(names)
        entries.append({"changed": {"name": str(obj._meta.verbose_name), "object": str(obj), "fields": fields}})
    for obj in formset.deleted_objects:
        entries.append({"deleted": {"name": str(obj._meta.verbose_name), "object": str(obj)}})
    return entries
