"""Policy as code from the browser (issue 13): export, upload, read the dry-run diff, apply; and the same diff from
`import_policy --dry-run`. Django's test client as a real logged-in session; the live gateway sees the new cap."""

import json
import time
from html import unescape

import pytest
import yaml
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from routing.models import AllowedModel, ModelAlias
from teams.models import Role, Team
from teams.services import add_team_member, create_team
from tests.support.admin_users import logged_in, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

EXPORT = reverse("admin:routing_allowedmodel_export_policy")
IMPORT = reverse("admin:routing_allowedmodel_import_policy")
CHANGELIST = reverse("admin:routing_allowedmodel_changelist")


def exported(client) -> dict:
    response = client.get(EXPORT)
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    return yaml.safe_load(response.content)


def changed_policy(data: dict) -> dict:
    """The export with a new cap, a second deployment, a new alias and a new team."""
    data["models"]["capped"]["max_tokens"] = 8
    pool = data["models"]["gpt-4o-mini"]
    data["models"]["gpt-4o-mini"] = {"deployments": [{key: pool[key] for key in ("litellm_model", "api_base")},
                                                     {"litellm_model": "openai/fake-second", "weight": 2}]}  # fmt: skip
    data["aliases"]["quick"] = "capped"
    data["teams"] = {"newteam": {"models": ["quick"], "rpm": 60}}
    return data


def upload(client, data: dict, name: str = "policy.yaml", **extra):
    text = json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data, sort_keys=False)
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, text.encode()), **extra})


def diff_rows(html: str) -> str:
    return html.split('id="policy-diff"')[1].split("</table>")[0]


def test_export_upload_diff_apply(admin_client, admin_user, policy, openai_client, fake_provider):
    changelist = admin_client.get(CHANGELIST).content.decode()
    assert f'href="{EXPORT}"' in changelist and f'href="{IMPORT}"' in changelist
    assert admin_client.get(IMPORT).status_code == 200
    unchanged = upload(admin_client, exported(admin_client)).content.decode()
    assert "nothing to apply" in unchanged and 'name="policy_text"' not in unchanged

    page = upload(admin_client, changed_policy(exported(admin_client)))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="policy-error"' not in html
    assert "2 added, 2 changed, 0 removed" in html
    rows = diff_rows(html)
    assert rows.count("<tr ") == 4  # exactly the changes: nothing of the untouched models
    assert "max_tokens: 5 → 8" in rows
    assert "deployments[1]: (none) → litellm_model=openai/fake-second, weight=2" in rows
    assert "target: (none) → capped" in rows and "newteam" in rows and "rpm: (none) → 60" in rows
    assert "claude-3-5-sonnet" not in rows and "disabled-model" not in rows
    assert AllowedModel.objects.get(name="capped").max_tokens == 5  # the preview changed nothing
    assert not ModelAlias.objects.filter(alias="quick").exists() and not Team.objects.filter(name="newteam").exists()

    text = html.split('name="policy_text" value="')[1].split('"')[0]
    applied = admin_client.post(IMPORT, {"policy_text": unescape(text), "apply": "Apply"})
    assert applied.status_code == 302 and applied["Location"] == CHANGELIST
    assert AllowedModel.objects.get(name="capped").max_tokens == 8
    assert AllowedModel.objects.get(name="gpt-4o-mini").deployments.count() == 2
    assert ModelAlias.objects.get(alias="quick").target.name == "capped"
    assert Team.objects.get(name="newteam").rpm_limit == 60
    entry = LogEntry.objects.get(object_repr="policy")
    assert entry.user == admin_user
    message = entry.get_change_message()
    assert "Policy import: 2 added, 2 changed, 0 removed" in message and "max_tokens: 5 → 8" in message
    assert "via policy import" in message

    started = time.monotonic()  # the live gateway sees the new cap
    while True:
        openai_client.chat.completions.create(model="capped", messages=[{"role": "user", "content": "REPEAT 9"}])
        if fake_provider.last_request.body["max_tokens"] == 8:
            break
        assert time.monotonic() - started < 1.0, "the imported cap did not reach the gateway within a second"
    assert upload(admin_client, exported(admin_client)).content.decode().count("nothing to apply") == 1


def test_prune_shows_removals_and_applies_them(admin_client, policy):
    data = exported(admin_client)
    del data["models"]["disabled-model"]
    html = upload(admin_client, data, "policy.json", prune="on").content.decode()
    assert "0 added, 0 changed, 1 removed" in html and "disabled-model" in diff_rows(html)
    assert 'name="prune" value="on"' in html
    assert "nothing to apply" in upload(admin_client, data, "policy.json").content.decode()  # kept without prune
    del data["models"]["gpt-4o-mini"]  # the target of the alias "fast"
    html = upload(admin_client, data, "policy.json", prune="on").content.decode()
    assert "aliases.fast: its model &#x27;gpt-4o-mini&#x27; is not in the file" in html
    assert AllowedModel.objects.count() == 4


@pytest.mark.parametrize(
    "breaks, shown",
    [
        (lambda data: data["models"]["capped"].update(max_tokens=-3), "models.capped.max_tokens"),
        (lambda data: data["models"]["capped"].update(fallbacks=["no-such-model"]), "models.capped.fallbacks"),
        (lambda data: data["aliases"].update(quick="no-such-model"), "aliases.quick: unknown model"),
        (lambda data: data.update(extra={}), "is a mapping with the keys"),
    ],
)
def test_a_file_with_an_error_shows_it_and_applies_nothing(admin_client, policy, breaks, shown):
    data = exported(admin_client)
    data["models"]["gpt-4o-mini"]["max_tokens"] = 77  # a good change beside the broken one
    breaks(data)
    html = upload(admin_client, data).content.decode()
    assert 'id="policy-error"' in html and shown in html and 'name="policy_text"' not in html
    applied = admin_client.post(IMPORT, {"policy_text": yaml.safe_dump(data), "apply": "Apply"})
    assert applied.status_code == 200 and 'id="policy-error"' in applied.content.decode()
    assert AllowedModel.objects.get(name="gpt-4o-mini").max_tokens is None
    assert not LogEntry.objects.filter(object_repr="policy").exists()


def test_a_file_that_is_not_yaml_is_shown_as_such(admin_client, policy):
    response = admin_client.post(IMPORT, {"file": SimpleUploadedFile("p.yaml", b"models: [unclosed")})
    assert "not valid YAML" in response.content.decode()


def test_import_is_for_superusers_and_export_for_provider_settings_editors(admin_client, policy):
    team = create_team(name="ateam")
    before = exported(admin_client)
    editor = logged_in(staff_user("editor", "routing.view_allowedmodel", "routing.change_provider_settings"))
    assert yaml.safe_load(editor.get(EXPORT).content) == before
    html = editor.get(CHANGELIST).content.decode()
    assert f'href="{EXPORT}"' in html and f'href="{IMPORT}"' not in html
    team_admin = staff_user("teamadmin", "routing.view_allowedmodel", "routing.change_provider_settings")
    add_team_member(team=team, user=team_admin, role=Role.ADMIN)
    refused = [
        logged_in(staff_user("plain")),
        logged_in(staff_user("viewer", "routing.view_allowedmodel", "routing.change_allowedmodel")),
        logged_in(team_admin),
    ]
    for client in refused:
        assert client.get(EXPORT).status_code == 403
    for client in [editor, *refused]:
        assert client.get(IMPORT).status_code == 403
        changed = changed_policy(exported(admin_client))
        assert upload(client, changed).status_code == 403
        assert client.post(IMPORT, {"policy_text": yaml.safe_dump(changed), "apply": "Apply"}).status_code == 403
    assert exported(admin_client) == before


def test_import_policy_dry_run_prints_the_diff_and_changes_nothing(admin_client, policy, manage_py, tmp_path):
    data = changed_policy(exported(admin_client))
    del data["models"]["disabled-model"]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = manage_py("import_policy", str(path), "--dry-run")
    lines = result.stdout.splitlines()
    assert "changed model capped" in lines and "    max_tokens: 5 → 8" in lines
    assert "added alias quick" in lines and "added team newteam" in lines
    assert "removed model disabled-model" not in lines
    assert lines[-1] == "dry run: 2 added, 2 changed, 0 removed; nothing was changed"
    pruned = manage_py("import_policy", str(path), "--dry-run", "--prune").stdout.splitlines()
    assert "removed model disabled-model" in pruned
    assert AllowedModel.objects.get(name="capped").max_tokens == 5 and AllowedModel.objects.count() == 4
    assert not Team.objects.exists() and not LogEntry.objects.exists()
    data["models"]["capped"]["max_tokens"] = -1
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    failed = manage_py("import_policy", str(path), "--dry-run", check=False)
    assert (
        failed.returncode == 1
        and "models.capped.max_tokens" in failed.stderr
        and "nothing was changed" in failed.stderr
    )
