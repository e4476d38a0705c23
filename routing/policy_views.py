"""The admin's "Export policy" and "Import policy" pages, linked from the models' changelist.

Import is for superusers only: a file can change every model's provider settings (where calls go, which key variable
they carry) and every team's limits. Export is also for whoever may view models and change provider settings
(it holds api_base and the NAMES of key variables, never a value), unless they belong to a team: the file lists every
team. The uploaded text travels back in a hidden field and is parsed and checked again when "Apply" is pressed.
"""

import json

import yaml
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from routing.policy_apply import Preview, apply_policy, preview_policy
from routing.policy_diff import PolicyDiff
from routing.policy_io import PolicyFileError, dump_policy_yaml, export_policy, validate_policy_data
from teams.access import visible_team_ids

EXPORT_FILENAME = "llmproxy-policy.yaml"
MAX_FILE_BYTES = 1024 * 1024
TEMPLATE = "admin/routing/policy_import.html"


def may_export(user) -> bool:
    if user.is_superuser:
        return True
    return (
        user.has_perm("routing.view_allowedmodel")
        and user.has_perm("routing.change_provider_settings")
        and not visible_team_ids(user)
    )


def may_import(user) -> bool:
    return user.is_active and user.is_superuser


class UploadForm(forms.Form):
    file = forms.FileField(label="Policy file", help_text="YAML or JSON, as “Export policy” writes it.")
    prune = forms.BooleanField(
        required=False,
        label="Also remove what the file does not name",
        help_text="Models, aliases and (if the file has a teams section) teams. A team that still has keys is kept.",
    )


def policy_urls(model_admin) -> list:
    """The two pages, named admin:routing_allowedmodel_export_policy and …_import_policy."""
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    wrap = model_admin.admin_site.admin_view
    return [
        path("export-policy/", wrap(export_view), name=f"{prefix}_export_policy"),
        path("import-policy/", wrap(lambda request: import_view(request, model_admin)), name=f"{prefix}_import_policy"),
    ]


def export_view(request: HttpRequest) -> HttpResponse:
    if not may_export(request.user):
        raise PermissionDenied
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    response = HttpResponse(dump_policy_yaml(export_policy()), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{EXPORT_FILENAME}"'
    return response


def import_view(request: HttpRequest, model_admin) -> HttpResponse:
    if not may_import(request.user):
        raise PermissionDenied
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, "title": "Import policy"}
    if request.method != "POST":
        return TemplateResponse(request, TEMPLATE, {**context, "form": UploadForm()})
    prune = request.POST.get("prune") in ("on", "1", "true")
    if "policy_text" in request.POST:  # "Apply": the text shown in the diff, checked again
        return apply_view(request, context, request.POST["policy_text"], prune=prune)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return TemplateResponse(request, TEMPLATE, {**context, "form": form})
    upload = form.cleaned_data["file"]
    if upload.size > MAX_FILE_BYTES:
        form.add_error("file", f"The file is larger than {MAX_FILE_BYTES // 1024} KiB.")
        return TemplateResponse(request, TEMPLATE, {**context, "form": form})
    try:
        text = upload.read().decode("utf-8")
    except UnicodeDecodeError:
        form.add_error("file", "The file is not UTF-8 text.")
        return TemplateResponse(request, TEMPLATE, {**context, "form": form})
    return preview_page(request, context, text, prune=prune, filename=upload.name)


def parse(text: str) -> object:
    """YAML, or JSON (which YAML reads too, but JSON's own parser gives the clearer message)."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PolicyFileError(f"not valid JSON: {exc}") from exc
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"not valid YAML: {exc}") from exc


def preview_of(text: str, *, prune: bool) -> Preview:
    try:
        data = validate_policy_data(parse(text))
    except PolicyFileError as exc:
        return Preview(diff=PolicyDiff(), error=str(exc))
    return preview_policy(data, prune=prune)


def preview_page(request: HttpRequest, context: dict, text: str, *, prune: bool, filename: str = "") -> HttpResponse:
    preview = preview_of(text, prune=prune)
    page = {"title": "Import policy: what would change", "preview": preview, "policy_text": text, "prune": prune}
    return TemplateResponse(request, TEMPLATE, {**context, **page, "filename": filename})


def apply_view(request: HttpRequest, context: dict, text: str, *, prune: bool) -> HttpResponse:
    preview = preview_of(text, prune=prune)
    if preview.error is not None:
        return preview_page(request, context, text, prune=prune)
    try:
        diff = apply_policy(validate_policy_data(parse(text)), prune=prune, user_id=request.user.pk)
    except PolicyFileError as exc:  # changed since the preview: nothing applied
        messages.error(request, f"Nothing was applied: {exc}")
        return preview_page(request, context, text, prune=prune)
    messages.success(request, f"Policy applied: {diff.summary()}." if diff else "Policy applied: nothing changed.")
    return HttpResponseRedirect(reverse("admin:routing_allowedmodel_changelist"))
