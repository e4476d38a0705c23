"""Every URL of the admin site, derived from the site itself (admin.site._registry and admin.site.get_urls()), so an
admin added later is walked without touching the tests that use this."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.contenttypes.models import ContentType
from django.forms.models import model_to_dict
from django.test import RequestFactory
from django.urls import reverse
from django.utils.http import urlencode


@dataclass(frozen=True)
class Page:
    url: str
    kind: str  # changelist, add, change, delete, history, rotate, …: the URL name without "<app>_<model>_"
    model: type
    pk: object = None  # the object the page is about, if any


def registered_models() -> list[type]:
    return list(admin.site._registry)


def model_admin(model: type) -> admin.ModelAdmin:
    return admin.site.get_model_admin(model)


def as_user_request(user, path: str = "/", data: dict | None = None):
    request = RequestFactory().get(path, data or {})
    request.user = user
    return request


def model_pages(model: type) -> list[Page]:
    """The model's URLs that take no object (changelist, add, …)."""
    prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
    return [Page(reverse(f"admin:{pattern.name}"), pattern.name.removeprefix(prefix), model)
            for pattern in model_admin(model).urls
            if pattern.name and not pattern.pattern.converters]  # fmt: skip


def object_pages(model: type, pk) -> list[Page]:
    """Every named URL of the model's admin that takes an object (change, delete, history, and our own)."""
    prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
    return [Page(reverse(f"admin:{pattern.name}", args=[pk]), pattern.name.removeprefix(prefix), model, pk)
            for pattern in model_admin(model).urls
            if pattern.name and pattern.pattern.converters]  # fmt: skip


def site_urls(objects: Iterable[tuple[type, object]]) -> list[str]:
    """The site's own pages: the index, each app's page, the JavaScript catalogue, the user's password change
    and the "view on site" shortcut for each object."""
    labels = sorted({model._meta.app_label for model in registered_models()})
    urls = [reverse("admin:index"), reverse("admin:jsi18n"), reverse("admin:password_change")]
    urls += [reverse("admin:app_list", args=[label]) for label in labels]
    for model, pk in objects:
        content_type = ContentType.objects.get_for_model(model)
        urls.append(reverse("admin:view_on_site", args=[content_type.pk, pk]))
    return urls


def autocomplete_fields() -> list[tuple[type, str]]:
    """(source model, field name) of every autocomplete field, on a registered admin or one of its inlines."""
    fields = []
    for model in registered_models():
        owner = model_admin(model)
        for source, names in [(model, owner.autocomplete_fields),
                              *[(inline.model, inline.autocomplete_fields) for inline in owner.inlines]]:  # fmt: skip
            fields += [(source, name) for name in names]
    return fields


def autocomplete_urls(terms: Iterable[str]) -> list[str]:
    urls = []
    for source, field_name in autocomplete_fields():
        for term in ["", *terms]:
            query = {"app_label": source._meta.app_label, "model_name": source._meta.model_name,
                     "field_name": field_name, "term": term}  # fmt: skip
            urls.append(f"{reverse('admin:autocomplete')}?{urlencode(query)}")
    return urls


def changelist_queries(model: type, superuser, terms: Iterable[str]) -> list[str]:
    """Query strings of the changelist: every filter choice as a superuser sees them (so another team's values are
    among them), facets, a popup, each search term, and the date hierarchy down to today."""
    owner = model_admin(model)
    changelist = owner.get_changelist_instance(as_user_request(superuser))
    queries = ["", "?_facets=True", "?_popup=1", "?o=1", "?o=-1"]
    for spec in changelist.filter_specs:
        queries += [choice["query_string"] for choice in spec.choices(changelist)]
    queries += [f"?{urlencode({'q': term})}" for term in terms]
    if owner.date_hierarchy:
        today, field = date.today(), owner.date_hierarchy
        queries += [f"?{field}__year={today.year}", f"?{field}__year={today.year}&{field}__month={today.month}",
                    f"?{field}__year={today.year}&{field}__month={today.month}&{field}__day={today.day}"]  # fmt: skip
    return sorted(set(queries))


def action_names(model: type, superuser) -> list[str]:
    return list(model_admin(model).get_actions(as_user_request(superuser)))


def action_post(action: str, pks: Iterable) -> dict:
    return {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "index": 0, "post": "yes",
            "grace_hours": "1"}  # fmt: skip


def change_post(model: type, obj, superuser, **changes) -> dict:
    """What the object's change form posts for a superuser, with `changes` applied (inlines left as they are)."""
    request = as_user_request(superuser)
    owner = model_admin(model)
    form_class = owner.get_form(request, obj, change=True)
    data = {}
    for name, value in model_to_dict(obj, fields=list(form_class.base_fields)).items():
        if value is None:
            data[name] = ""
        elif isinstance(value, list):
            data[name] = [str(getattr(item, "pk", item)) for item in value]
        else:
            data[name] = str(getattr(value, "pk", value))
    for formset, _inline in owner.get_formsets_with_inlines(request, obj):
        prefix = formset.get_default_prefix()
        existing = formset(instance=obj).get_queryset()
        data |= {f"{prefix}-TOTAL_FORMS": str(len(existing)), f"{prefix}-INITIAL_FORMS": str(len(existing)),
                 f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}  # fmt: skip
        for index, item in enumerate(existing):
            data[f"{prefix}-{index}-id"] = str(item.pk)
            for field in formset.form.base_fields:
                if field not in ("id", "DELETE") and hasattr(item, f"{field}_id"):
                    data[f"{prefix}-{index}-{field}"] = str(getattr(item, f"{field}_id"))
                elif field not in ("id", "DELETE") and hasattr(item, field):
                    value = getattr(item, field)
                    data[f"{prefix}-{index}-{field}"] = "" if value is None else str(value)
    data.update(changes)
    return data


def row(obj) -> dict:
    """Every column (editable or not: a revocation or rotation sets non-editable ones) and many-to-many link."""
    values = {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}
    for field in obj._meta.many_to_many:
        values[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return values


def every_row() -> dict[str, list[dict]]:
    """Every row of every model of the project except sessions (a login writes one): what a refused write must
    leave as it was."""
    return {model._meta.label: [row(obj) for obj in model._default_manager.order_by("pk")]
            for model in apps.get_models() if model._meta.app_label != "sessions"}  # fmt: skip
