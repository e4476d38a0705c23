from django.contrib.auth.management import create_permissions
from django.db import migrations

from teams.groups import GROUP_PERMISSIONS, ensure_groups

APPS_WITH_PERMISSIONS = ("keys", "usage", "teams", "admin")


def create_groups(apps, schema_editor) -> None:
    # Permissions are normally created after all migrations ran (post_migrate): create the ones needed now.
    for label in APPS_WITH_PERMISSIONS:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    ensure_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def delete_groups(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUP_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0001_initial"),
        ("keys", "0004_team_creator_alert_rotation"),
        ("usage", "0005_teams_and_budget_alerts"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
