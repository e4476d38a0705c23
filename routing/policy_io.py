"""The policy file (YAML or JSON): import as an upsert, export as YAML that imports back unchanged.

A model gives its provider settings either at its own level (the single form: one deployment) or as a
`deployments:` list. Export writes the single form wherever it says everything, so older files round-trip as they are.
A `teams:` section gives each team's models and limits (never its members or keys). A file without that section
leaves teams alone, even with --prune (files written before teams existed); export writes it when a team exists.
"""

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch

from routing.models import AllowedModel, Deployment, ModelAlias, parse_model_names
from routing.provider_keys import provider_key_var_refusal
from routing.services import DEPLOYMENT_DEFAULTS, DEPLOYMENT_FIELDS, SINGLE_FORM_FIELDS, save_deployments
from teams.models import BudgetPeriod, Team, parse_model_list

OWN_DEFAULTS: dict[str, Any] = {  # the model's own settings (not its deployments')
    "max_tokens": None,
    "num_retries": None,
    "enabled": True,
    "max_n": None,
    "refused_params": "",
    "fallbacks": "",
    "context_window_fallbacks": "",
}
FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks")
MODEL_FIELDS = (
    "litellm_model",
    "api_base",
    "api_key_env",
    "max_tokens",
    "timeout_seconds",
    "num_retries",
    "enabled",
    "use_litellm",
    "max_n",
    "refused_params",
    "fallbacks",
    "context_window_fallbacks",
    "deployments",
)  # fmt: skip  (the order export writes them in)
TEAM_FIELDS = {  # the file's name → Team's field, in the order export writes them
    "models": "allowed_models",
    "rpm": "rpm_limit",
    "tpm": "tpm_limit",
    "max_budget": "max_budget_usd",
    "budget_period": "budget_period",
    "alert_percent": "alert_percent",
}
TEAM_DEFAULTS: dict[str, Any] = {
    "allowed_models": "",
    "rpm_limit": None,
    "tpm_limit": None,
    "max_budget_usd": None,
    "budget_period": BudgetPeriod.MONTH,
    "alert_percent": None,
}


class PolicyFileError(Exception):
    pass


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def read_policy_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicyFileError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {exc}") from exc
    return validate_policy_data(data or {})


def validate_policy_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) - {"models", "aliases", "teams"}:
        raise PolicyFileError("The policy file is a mapping with the keys 'models' and 'aliases' (and 'teams').")
    models = data.get("models") or {}
    aliases = data.get("aliases") or {}
    if not isinstance(models, dict) or not isinstance(aliases, dict):
        raise PolicyFileError("'models' and 'aliases' are mappings.")
    for name, spec in models.items():
        if spec is None:
            models[name] = spec = {}
        validate_model_spec(f"models.{name}", spec)
    for alias, target in aliases.items():
        if not isinstance(target, str):
            raise PolicyFileError(f"aliases.{alias}: the target is a model name.")
        if target not in models and not AllowedModel.objects.filter(name=target).exists():
            raise PolicyFileError(f"aliases.{alias}: unknown model '{target}'.")
    teams = data.get("teams")
    if teams is None and "teams" in data:
        teams = {}
    if teams is not None:
        if not isinstance(teams, dict):
            raise PolicyFileError("'teams' is a mapping of team names to their models and limits.")
        teams = {str(name): team_values(f"teams.{name}", spec) for name, spec in teams.items()}
    return {"models": models, "aliases": aliases, "teams": teams}


def team_values(label: str, spec: Any) -> dict[str, Any]:
    """A team's settings in the file, as Team's field values (every field: a missing one means its default)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise PolicyFileError(f"{label}: expected a mapping of settings.")
    unknown = set(spec) - set(TEAM_FIELDS)
    if unknown:
        raise PolicyFileError(f"{label}: unknown setting(s) {', '.join(sorted(map(str, unknown)))}.")
    values = dict(TEAM_DEFAULTS)
    for name, value in spec.items():
        if value is not None:
            values[TEAM_FIELDS[name]] = value
    models = values["allowed_models"]
    if not isinstance(models, str) and not is_list_of_names(models):
        raise PolicyFileError(f"{label}.models: a list of model or alias names.")
    values["allowed_models"] = ",".join(parse_model_list(models if isinstance(models, str) else ",".join(models)))
    for name in ("rpm", "tpm", "alert_percent"):
        value = values[TEAM_FIELDS[name]]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise PolicyFileError(f"{label}.{name}: a whole number.")
    budget = values["max_budget_usd"]
    if budget is not None:
        try:
            values["max_budget_usd"] = Decimal(str(budget)) if not isinstance(budget, bool) else None
        except InvalidOperation:
            values["max_budget_usd"] = None
        if values["max_budget_usd"] is None or not values["max_budget_usd"].is_finite():
            raise PolicyFileError(f"{label}.max_budget: an amount in USD.")
    return values


def validate_model_spec(label: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        raise PolicyFileError(f"{label}: expected a mapping of settings.")
    unknown = set(spec) - set(MODEL_FIELDS)
    if unknown:
        raise PolicyFileError(f"{label}: unknown setting(s) {', '.join(sorted(unknown))}.")
    for name in FALLBACK_FIELDS:
        names = spec.get(name)
        if names is not None and not isinstance(names, str) and not is_list_of_names(names):
            raise PolicyFileError(f"{label}.{name}: a list of model names.")
    if "deployments" not in spec:
        refuse_key_variable(label, spec)
        return
    single = sorted(set(spec) & set(SINGLE_FORM_FIELDS))
    if single:
        raise PolicyFileError(f"{label}: {', '.join(single)} belong in each of its deployments, not beside them.")
    deployments = spec["deployments"]
    if not isinstance(deployments, list):
        raise PolicyFileError(f"{label}.deployments: a list of deployments.")
    for index, deployment in enumerate(deployments):
        where = f"{label}.deployments[{index}]"
        if not isinstance(deployment, dict):
            raise PolicyFileError(f"{where}: expected a mapping of settings.")
        unknown = set(deployment) - set(DEPLOYMENT_FIELDS)
        if unknown:
            raise PolicyFileError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}.")
        refuse_key_variable(where, deployment)


def is_list_of_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def refuse_key_variable(label: str, settings: dict[str, Any]) -> None:
    key_var = settings.get("api_key_env")
    refusal = provider_key_var_refusal(key_var) if isinstance(key_var, str) and key_var else None
    if refusal is not None:
        raise PolicyFileError(f"{label}.api_key_env: {refusal}")


def own_values(spec: dict[str, Any]) -> dict[str, Any]:
    values = {name: spec.get(name, default) for name, default in OWN_DEFAULTS.items()}
    if isinstance(values["refused_params"], list):  # a YAML list reads as naturally as "a, b"
        values["refused_params"] = ", ".join(str(name) for name in values["refused_params"])
    for name in FALLBACK_FIELDS:  # stored as AllowedModel.clean() spells them
        names = values[name]
        values[name] = ", ".join(parse_model_names(", ".join(names) if isinstance(names, list) else names or ""))
    return {name: ("" if value is None and OWN_DEFAULTS[name] == "" else value) for name, value in values.items()}


def deployment_specs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    if "deployments" in spec:
        return spec["deployments"]
    return [{name: spec[name] for name in SINGLE_FORM_FIELDS if name in spec}]


def _save(instance, label: str) -> None:
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise PolicyFileError(describe_problems(label, exc)) from exc
    instance.save()


def describe_problems(label: str, error: ValidationError, *, drop: str = "") -> str:
    """Each problem names the setting it is about, e.g. "models.m.fallbacks: …" (`drop`: a prefix the file lacks)."""
    if not hasattr(error, "error_dict"):
        return f"{label}: {'; '.join(error.messages)}"
    problems = []
    for where, messages in error.message_dict.items():
        where = "" if where == NON_FIELD_ERRORS else where.removeprefix(drop).lstrip(".")
        problems.append(f"{label}{'.' if where else ''}{where}: {'; '.join(messages)}")
    return " ".join(problems)


def _save_deployments(model: AllowedModel, spec: dict[str, Any], label: str) -> bool:
    try:
        return save_deployments(model, deployment_specs(spec))
    except ValidationError as exc:  # the single form: its one deployment's settings are the model's own
        drop = "" if "deployments" in spec else "deployments[0]"
        raise PolicyFileError(describe_problems(label, exc, drop=drop)) from exc


@transaction.atomic
def import_policy(data: dict[str, Any], *, prune: bool = False) -> ImportResult:
    result = ImportResult()
    if data.get("teams") is not None:
        import_teams(data["teams"], prune=prune, result=result)
    if prune:
        for alias in ModelAlias.objects.exclude(alias__in=list(data["aliases"])):
            alias.delete()
            result.deleted.append(f"alias {alias.alias}")
        for model in AllowedModel.objects.exclude(name__in=list(data["models"])):
            model.delete()
            result.deleted.append(f"model {model.name}")
    ModelAlias.objects.filter(alias__in=list(data["models"])).delete()  # a name becomes a model
    pending_fallbacks: list[tuple[AllowedModel, dict[str, str], str]] = []
    for name, spec in data["models"].items():
        label = f"models.{name}"
        values = own_values(spec)
        fallbacks = {key: values.pop(key) for key in FALLBACK_FIELDS}  # set once every model and alias exists
        model = AllowedModel.objects.filter(name=name).first()
        created = model is None
        model = model or AllowedModel(name=name)
        fallbacks_changed = any(getattr(model, key) != value for key, value in fallbacks.items())
        own_changed = created or any(getattr(model, key) != value for key, value in values.items())
        if own_changed:
            for key, value in {**values, "fallbacks": "", "context_window_fallbacks": ""}.items():
                setattr(model, key, value)
            _save(model, label)
        deployments_changed = _save_deployments(model, spec, label)
        if own_changed or fallbacks_changed:
            pending_fallbacks.append((model, fallbacks, label))
        if created:
            result.created.append(f"model {name}")
        elif own_changed or fallbacks_changed or deployments_changed:
            result.updated.append(f"model {name}")
        else:
            result.unchanged.append(f"model {name}")
    for alias_name, target_name in data["aliases"].items():
        target = AllowedModel.objects.get(name=target_name)
        alias = ModelAlias.objects.filter(alias=alias_name).first()
        if alias is None:
            _save(ModelAlias(alias=alias_name, target=target), f"aliases.{alias_name}")
            result.created.append(f"alias {alias_name}")
        elif alias.target_id != target.pk:
            alias.target = target
            _save(alias, f"aliases.{alias_name}")
            result.updated.append(f"alias {alias_name}")
        else:
            result.unchanged.append(f"alias {alias_name}")
    for model, fallbacks, label in pending_fallbacks:
        if any(getattr(model, key) != value for key, value in fallbacks.items()):
            for key, value in fallbacks.items():
                setattr(model, key, value)
            _save(model, label)
    return result


def import_teams(teams: dict[str, dict[str, Any]], *, prune: bool, result: ImportResult) -> None:
    if prune:
        for team in Team.objects.exclude(name__in=list(teams)).order_by("name"):
            keys = list(team.keys.order_by("name").values_list("name", flat=True))
            if keys:
                raise PolicyFileError(
                    f"teams: the file no longer names the team '{team.name}', but it still has "
                    f"{len(keys)} API key(s) ({', '.join(keys[:5])}{', …' if len(keys) > 5 else ''}): "
                    "move or delete them first, or keep the team in the file. Nothing was changed."
                )
            team.delete()
            result.deleted.append(f"team {team.name}")
    for name, values in teams.items():
        team = Team.objects.filter(name=name).first()
        if team is not None and all(getattr(team, key) == value for key, value in values.items()):
            result.unchanged.append(f"team {name}")
            continue
        created = team is None
        team = team or Team(name=name)
        for key, value in values.items():
            setattr(team, key, value)
        try:
            team.full_clean()
        except ValidationError as exc:
            raise PolicyFileError(describe_team_problems(f"teams.{name}", exc)) from exc
        team.save()
        (result.created if created else result.updated).append(f"team {name}")


def describe_team_problems(label: str, error: ValidationError) -> str:
    file_names = {field_name: name for name, field_name in TEAM_FIELDS.items()}
    if not hasattr(error, "error_dict"):
        return f"{label}: {'; '.join(error.messages)}"
    return " ".join(
        f"{label}{'' if where == NON_FIELD_ERRORS else '.' + file_names.get(where, where)}: {'; '.join(messages)}"
        for where, messages in error.message_dict.items()
    )


def export_teams() -> dict[str, dict[str, Any]]:
    teams: dict[str, dict[str, Any]] = {}
    for team in Team.objects.order_by("name"):
        spec: dict[str, Any] = {}
        for name, field_name in TEAM_FIELDS.items():
            value = getattr(team, field_name)
            if value == TEAM_DEFAULTS[field_name]:
                continue
            if field_name == "allowed_models":
                value = team.model_allowlist
            elif field_name == "max_budget_usd":
                value = int(value) if value == value.to_integral_value() else float(value)
            spec[name] = value
        teams[team.name] = spec
    return teams


def export_policy() -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {}
    rows = AllowedModel.objects.order_by("name").prefetch_related(
        Prefetch("deployments", queryset=Deployment.objects.order_by("id"))
    )
    for model in rows:
        models[model.name] = export_model(model, list(model.deployments.all()))
    aliases = dict(ModelAlias.objects.order_by("alias").values_list("alias", "target__name"))
    teams = export_teams()
    return {"models": models, "aliases": aliases, **({"teams": teams} if teams else {})}


def export_model(model: AllowedModel, deployments: list[Deployment]) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(model, name) for name in OWN_DEFAULTS if name not in FALLBACK_FIELDS}
    values["fallbacks"] = list(model.fallback_names)
    values["context_window_fallbacks"] = list(model.context_window_fallback_names)
    settings = [{name: getattr(deployment, name) for name in DEPLOYMENT_FIELDS} for deployment in deployments]
    if len(settings) == 1 and all(
        value == DEPLOYMENT_DEFAULTS[name] for name, value in settings[0].items() if name not in SINGLE_FORM_FIELDS
    ):
        values.update({name: settings[0][name] for name in SINGLE_FORM_FIELDS})
    else:
        values["deployments"] = [
            {name: value for name, value in one.items() if value != DEPLOYMENT_DEFAULTS[name]} for one in settings
        ]
    defaults = {**OWN_DEFAULTS, **DEPLOYMENT_DEFAULTS, "fallbacks": [], "context_window_fallbacks": []}
    return {
        name: values[name]
        for name in MODEL_FIELDS
        if name in values and (name == "deployments" or values[name] != defaults[name])
    }


def dump_policy_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
