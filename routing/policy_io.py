"""The policy file (YAML or JSON): import as an upsert, export as YAML that imports back unchanged."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from routing.models import AllowedModel, ModelAlias
from routing.provider_keys import provider_key_var_refusal

MODEL_FIELDS = (
    "litellm_model", "api_base", "api_key_env", "max_tokens", "timeout_seconds", "num_retries", "enabled",
    "use_litellm", "max_n", "refused_params",
)  # fmt: skip
FIELD_DEFAULTS: dict[str, Any] = {
    "litellm_model": "",
    "api_base": "",
    "api_key_env": "",
    "max_tokens": None,
    "timeout_seconds": None,
    "num_retries": None,
    "enabled": True,
    "use_litellm": False,
    "max_n": None,
    "refused_params": "",
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
    if not isinstance(data, dict) or set(data) - {"models", "aliases"}:
        raise PolicyFileError("The policy file is a mapping with the keys 'models' and 'aliases'.")
    models = data.get("models") or {}
    aliases = data.get("aliases") or {}
    if not isinstance(models, dict) or not isinstance(aliases, dict):
        raise PolicyFileError("'models' and 'aliases' are mappings.")
    for name, spec in models.items():
        if spec is None:
            models[name] = spec = {}
        if not isinstance(spec, dict):
            raise PolicyFileError(f"models.{name}: expected a mapping of settings.")
        unknown = set(spec) - set(MODEL_FIELDS)
        if unknown:
            raise PolicyFileError(f"models.{name}: unknown setting(s) {', '.join(sorted(unknown))}.")
        key_var = spec.get("api_key_env")
        refusal = provider_key_var_refusal(key_var) if isinstance(key_var, str) and key_var else None
        if refusal is not None:
            raise PolicyFileError(f"models.{name}.api_key_env: {refusal}")
    for alias, target in aliases.items():
        if not isinstance(target, str):
            raise PolicyFileError(f"aliases.{alias}: the target is a model name.")
        if target not in models and not AllowedModel.objects.filter(name=target).exists():
            raise PolicyFileError(f"aliases.{alias}: unknown model '{target}'.")
    return {"models": models, "aliases": aliases}


def _model_values(spec: dict[str, Any]) -> dict[str, Any]:
    values = {name: spec.get(name, default) for name, default in FIELD_DEFAULTS.items()}
    if isinstance(values["refused_params"], list):  # a YAML list reads as naturally as "a, b"
        values["refused_params"] = ", ".join(str(name) for name in values["refused_params"])
    return {name: ("" if value is None and FIELD_DEFAULTS[name] == "" else value) for name, value in values.items()}


def _save(instance, label: str) -> None:
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise PolicyFileError(f"{label}: {'; '.join(exc.messages)}") from exc
    instance.save()


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
    for name, spec in data["models"].items():
        values = _model_values(spec)
        model = AllowedModel.objects.filter(name=name).first()
        if model is None:
            _save(AllowedModel(name=name, **values), f"models.{name}")
            result.created.append(f"model {name}")
        elif any(getattr(model, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(model, k, v)
            _save(model, f"models.{name}")
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
    return result


def export_policy() -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {}
    for model in AllowedModel.objects.order_by("name"):
        spec = {}
        for name in MODEL_FIELDS:
            value = getattr(model, name)
            if value != FIELD_DEFAULTS[name]:
                spec[name] = value
        models[model.name] = spec
    aliases = dict(ModelAlias.objects.order_by("alias").values_list("alias", "target__name"))
    return {"models": models, "aliases": aliases}


def dump_policy_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
