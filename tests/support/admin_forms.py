"""POST data for the model page of the admin, as the browser sends it: the model's fields and both inlines."""

from typing import Any

DEPLOYMENT_FIELDS = ("name", "litellm_model", "api_base", "api_key_env", "timeout_seconds", "use_litellm", "weight",
                     "priority", "rpm", "tpm", "enabled")  # fmt: skip
BOOLEAN_FIELDS = ("enabled", "use_litellm")


def form_value(name: str, value: Any) -> str:
    if name in BOOLEAN_FIELDS:
        return "on" if value else ""
    return "" if value is None else str(value)


def add_model_data(name: str, *, deployments: list[dict[str, Any]] | None = None, aliases: tuple[str, ...] = (),
                   **fields: Any) -> dict[str, str]:  # fmt: skip
    """The add page: `deployments` as typed into the inline rows (default: one row left blank)."""
    data = {"name": name, "enabled": "on", **{key: form_value(key, value) for key, value in fields.items()}}
    rows = [{"weight": 1, "priority": 0, "enabled": True, **row} for row in (deployments or [{}])]
    data.update(formset("deployments", rows, initial=0))
    data.update(formset("aliases", [{"alias": alias} for alias in aliases], initial=0))
    return data


def change_model_data(model, *, deployments: dict[int, dict[str, Any]] | None = None,
                      new_deployments: list[dict[str, Any]] = (), **changes: Any) -> dict[str, str]:  # fmt: skip
    """The change page as shown, with `changes` to the model and `deployments` ({index: changes}) to its rows."""
    data = {
        "name": model.name,
        "enabled": "on" if model.enabled else "",
        "max_tokens": form_value("max_tokens", model.max_tokens),
        "max_n": form_value("max_n", model.max_n),
        "refused_params": model.refused_params,
        "num_retries": form_value("num_retries", model.num_retries),
        "fallbacks": model.fallbacks,
        "context_window_fallbacks": model.context_window_fallbacks,
    }
    data.update({key: form_value(key, value) for key, value in changes.items()})
    existing = list(model.deployments.all())
    rows = [{"id": d.pk, "model": model.pk, **{key: getattr(d, key) for key in DEPLOYMENT_FIELDS}} for d in existing]
    for index, row_changes in (deployments or {}).items():
        rows[index].update(row_changes)
    new = [{"weight": 1, "priority": 0, "enabled": True, **row} for row in new_deployments]
    data.update(formset("deployments", rows + new, initial=len(rows)))
    aliases = [{"id": alias.pk, "target": model.pk, "alias": alias.alias} for alias in model.aliases.all()]
    data.update(formset("aliases", aliases, initial=len(aliases)))
    return data


def formset(prefix: str, rows: list[dict[str, Any]], *, initial: int) -> dict[str, str]:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial)}
    for index, row in enumerate(rows):
        for key, value in row.items():
            if key in BOOLEAN_FIELDS and not value:
                continue  # an unticked box is not sent
            data[f"{prefix}-{index}-{key}"] = form_value(key, value)
    return data
