"""The policy file (YAML or JSON): import as an upsert, export as YAML that imports back unchanged.

A model gives its provider settings either at its own level (the single form: one deployment) or as a
`deployments:` list. Export writes the single form wherever it says everything, so older files round-trip as they are.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch

from routing.models import AllowedModel, Deployment, ModelAlias, parse_model_names
from routing.provider_keys import provider_key_var_refusal
from routing.services import DEPLOYMENT_DEFAULTS, DEPLOYMENT_FIELDS, SINGLE_FORM_FIELDS, save_deployments

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
    if not isinstance(data, dict) or set(data) - {"models", "aliases"}:
        raise PolicyFileError("The policy file is a mapping with the keys 'models' and 'aliases'.")
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
    return {"models": models, "aliases": aliases}


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


def export_policy() -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {}
    rows = AllowedModel.objects.order_by("name").prefetch_related(
        Prefetch("deployments", queryset=Deployment.objects.order_by("id"))
    )
    for model in rows:
        models[model.name] = export_model(model, list(model.deployments.all()))
    aliases = dict(ModelAlias.objects.order_by("alias").values_list("alias", "target__name"))
    return {"models": models, "aliases": aliases}


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
