"""Writing models and their deployments: the one way the policy file, the tests and scripts create them.

A model's provider settings live on its deployments. The single form (`create_model("gpt-4o",
litellm_model="openai/gpt-4o", api_base=…)`) makes one deployment; `deployments=[{…}, {…}]` makes several.
"""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from routing.models import AllowedModel, Deployment

SINGLE_FORM_FIELDS = ("litellm_model", "api_base", "api_key_env", "timeout_seconds", "use_litellm")
DEPLOYMENT_DEFAULTS: dict[str, Any] = {
    "name": "",
    "litellm_model": "",
    "api_base": "",
    "api_key_env": "",
    "timeout_seconds": None,
    "use_litellm": False,
    "weight": 1,
    "priority": 0,
    "rpm": None,
    "tpm": None,
    "enabled": True,
}
DEPLOYMENT_FIELDS = tuple(DEPLOYMENT_DEFAULTS)


def split_single_form(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the model's own settings, the one deployment's settings) of a model given in the single form."""
    model_fields = {name: value for name, value in fields.items() if name not in SINGLE_FORM_FIELDS}
    deployment = {name: value for name, value in fields.items() if name in SINGLE_FORM_FIELDS}
    return model_fields, deployment


def deployment_values(spec: dict[str, Any]) -> dict[str, Any]:
    """Every deployment setting: a missing one (or None for a text setting) means its default."""
    unknown = set(spec) - set(DEPLOYMENT_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown deployment setting(s): {', '.join(sorted(unknown))}.")
    values = {name: spec.get(name, default) for name, default in DEPLOYMENT_DEFAULTS.items()}
    return {
        name: ("" if value is None and DEPLOYMENT_DEFAULTS[name] == "" else value) for name, value in values.items()
    }


@transaction.atomic
def create_model(name: str, *, deployments: list[dict[str, Any]] | None = None, **fields: Any) -> AllowedModel:
    """A validated model with its deployments: those given, else one from the single-form settings in `fields`."""
    model_fields, single = split_single_form(fields)
    if deployments is not None and single:
        raise ValidationError(
            f"Give either {', '.join(sorted(single))} or a 'deployments' list for '{name}', not both."
        )
    model = AllowedModel(name=name, **model_fields)
    model.full_clean()
    model.save()
    save_deployments(model, [single] if deployments is None else deployments)
    return model


@transaction.atomic
def save_deployments(model: AllowedModel, deployments: list[dict[str, Any]]) -> bool:
    """Make `model`'s deployments exactly `deployments` (in order); True when anything changed.

    The n-th given deployment updates the model's n-th existing one (by id), so that an import that changes nothing
    keeps every deployment's id (the key of its health and of its usage rows). A problem is raised as a
    ValidationError keyed "deployments[<index>].<field>" (or "deployments[<index>]" when it is no one field's).
    """
    existing = list(model.deployments.order_by("id"))
    changed = False
    for index, spec in enumerate(deployments):
        try:
            values = deployment_values(spec)
        except ValidationError as exc:
            raise at_index(exc, index) from exc
        deployment = existing[index] if index < len(existing) else Deployment(model=model)
        if deployment.pk is not None and all(getattr(deployment, key) == value for key, value in values.items()):
            continue
        for key, value in values.items():
            setattr(deployment, key, value)
        try:
            deployment.full_clean()
        except ValidationError as exc:
            raise at_index(exc, index) from exc
        deployment.save()
        changed = True
    for surplus in existing[len(deployments) :]:
        surplus.delete()
        changed = True
    return changed


def at_index(error: ValidationError, index: int) -> ValidationError:
    where = f"deployments[{index}]"
    if not hasattr(error, "error_dict"):
        return ValidationError({where: error.messages})
    return ValidationError(
        {
            where if name == NON_FIELD_ERRORS else f"{where}.{name}": messages
            for name, messages in error.message_dict.items()
        }
    )
