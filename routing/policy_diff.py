"""What importing a policy file would change: the current policy (as export_policy writes it) against the file's data.

Pure over plain data, like the resolver: both sides are brought to one normal form (every setting, defaults filled
in, the single form as one deployment) and compared field by field. Deployments are compared by index, as the import
pairs them (the n-th in the file updates the n-th existing one). Removals are listed only where the import makes
them: with `prune`, and an alias whose name the file gives to a model. `import_policy --dry-run` prints it and the
admin's "Import policy" page shows it before anything is applied.
"""

from dataclasses import dataclass, field
from typing import Any

from routing.policy_io import TEAM_DEFAULTS, TEAM_FIELDS, deployment_specs, own_values, team_values
from routing.services import DEPLOYMENT_DEFAULTS, deployment_values

ADDED, CHANGED, REMOVED = "added", "changed", "removed"
NONE = "(none)"


@dataclass(frozen=True)
class FieldChange:
    name: str  # as the file spells it: "max_tokens", "deployments[1].api_base", "rpm"
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.name}: {show(self.old)} → {show(self.new)}"


@dataclass(frozen=True)
class Change:
    kind: str  # model, alias, team
    name: str
    action: str  # added, changed, removed
    fields: tuple[FieldChange, ...] = ()

    def describe(self) -> str:
        return f"{self.action} {self.kind} {self.name}"


@dataclass
class PolicyDiff:
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def of(self, action: str) -> list[Change]:
        return [change for change in self.changes if change.action == action]

    def lines(self) -> list[str]:
        lines = []
        for change in self.changes:
            lines.append(change.describe())
            lines += [f"    {one.describe()}" for one in change.fields]
        return lines or ["no changes"]

    def summary(self) -> str:
        counts = {action: len(self.of(action)) for action in (ADDED, CHANGED, REMOVED)}
        return ", ".join(f"{count} {action}" for action, count in counts.items())


def show(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return NONE
    if isinstance(value, dict):
        return ", ".join(f"{name}={show(one)}" for name, one in value.items())
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def diff_policy(current: dict[str, Any], incoming: dict[str, Any], *, prune: bool = False) -> PolicyDiff:
    """`current`: export_policy()'s data; `incoming`: validate_policy_data()'s (a file's, as the import reads it)."""
    diff = PolicyDiff()
    models, aliases = incoming.get("models") or {}, incoming.get("aliases") or {}
    diff.changes += compare(
        "model",
        {name: normal_model(spec) for name, spec in (current.get("models") or {}).items()},
        {name: normal_model(spec or {}) for name, spec in models.items()},
        removable=lambda name: prune,
    )
    diff.changes += compare(
        "alias",
        {name: {"target": target} for name, target in (current.get("aliases") or {}).items()},
        {name: {"target": target} for name, target in aliases.items()},
        removable=lambda name: prune or name in models,  # the import drops an alias whose name becomes a model's
    )
    if incoming.get("teams") is not None:  # a file without a teams section leaves teams alone
        diff.changes += compare(
            "team",
            {
                name: normal_team(team_values(f"teams.{name}", spec))
                for name, spec in (current.get("teams") or {}).items()
            },
            {name: normal_team(values) for name, values in incoming["teams"].items()},
            removable=lambda name: prune,
        )
    return diff


def compare(kind: str, old: dict[str, dict], new: dict[str, dict], *, removable) -> list[Change]:
    changes = []
    for name, values in new.items():
        if name not in old:
            changes.append(Change(kind, name, ADDED, added_fields(kind, values)))
            continue
        fields = changed_fields(old[name], values)
        if fields:
            changes.append(Change(kind, name, CHANGED, fields))
    changes += [Change(kind, name, REMOVED) for name in old if name not in new and removable(name)]
    return changes


def added_fields(kind: str, values: dict[str, Any]) -> tuple[FieldChange, ...]:
    """A new object's settings that differ from a default (every one for an alias: its target)."""
    defaults = {"model": MODEL_DEFAULTS, "team": TEAM_FILE_DEFAULTS}.get(kind, {})
    fields = []
    for name, value in values.items():
        if name == "deployments":
            fields += [FieldChange(f"deployments[{index}]", None, non_default(one)) for index, one in enumerate(value)]
        elif name not in defaults or value != defaults[name]:
            fields.append(FieldChange(name, None, value))
    return tuple(fields)


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    fields = []
    for name, value in new.items():
        if name == "deployments":
            fields += deployment_changes(old["deployments"], value)
        elif old[name] != value:
            fields.append(FieldChange(name, old[name], value))
    return tuple(fields)


def deployment_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[FieldChange]:
    changes = []
    for index, values in enumerate(new):
        where = f"deployments[{index}]"
        if index >= len(old):
            changes.append(FieldChange(where, None, non_default(values)))
            continue
        changes += [FieldChange(f"{where}.{name}", old[index][name], value)
                    for name, value in values.items() if old[index][name] != value]  # fmt: skip
    changes += [
        FieldChange(f"deployments[{index}]", non_default(old[index]), None) for index in range(len(new), len(old))
    ]
    return changes


def non_default(deployment: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in deployment.items() if value != DEPLOYMENT_DEFAULTS[name]}


def normal_model(spec: dict[str, Any]) -> dict[str, Any]:
    """Every setting of a model as the import stores it, its deployments as a list (the single form: one)."""
    return {**own_values(spec), "deployments": [deployment_values(one) for one in deployment_specs(spec)]}


def normal_team(values: dict[str, Any]) -> dict[str, Any]:
    """Team field values (team_values()) under the names the file gives them."""
    return {name: values[field_name] for name, field_name in TEAM_FIELDS.items()}


MODEL_DEFAULTS = normal_model({})
MODEL_DEFAULTS.pop("deployments")
TEAM_FILE_DEFAULTS = normal_team(TEAM_DEFAULTS)
