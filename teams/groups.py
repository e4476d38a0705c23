"""The two Django groups a membership puts a user in, and the permissions each one grants.

Permissions say what kind of object a user may touch; the admin narrows every page to the user's teams
(teams.access). The migration 0002 creates the groups; `ensure_team_groups` re-creates them if a database
was emptied (a flush keeps the permission rows, not the groups).
"""

TEAM_ADMINS = "Team admins"
TEAM_MEMBERS = "Team members"

GROUP_PERMISSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    TEAM_ADMINS: (
        ("keys", "view_apikey"),
        ("keys", "add_apikey"),
        ("keys", "change_apikey"),
        ("usage", "view_requestlog"),
        ("usage", "view_dailyusage"),
        ("usage", "view_budgetalert"),
        ("teams", "view_team"),
        ("admin", "view_logentry"),  # the audit trail, narrowed to their teams' keys (audit/admin.py)
    ),
    TEAM_MEMBERS: (
        ("usage", "view_requestlog"),
        ("usage", "view_dailyusage"),
        ("usage", "view_budgetalert"),
        ("teams", "view_team"),
    ),
}


def ensure_groups(group_model, permission_model) -> dict:
    """The groups by name, each holding exactly its permissions (model classes passed in: migrations use theirs)."""
    groups = {}
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = [
            permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in codenames
        ]
        group.permissions.set(wanted)
        groups[name] = group
    return groups
