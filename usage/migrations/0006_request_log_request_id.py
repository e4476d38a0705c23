from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, so that the request log keeps taking rows while a large one is
    indexed (a plain CREATE INDEX blocks every insert until it is done); other databases build it the plain way."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("usage", "0005_teams_and_budget_alerts"),
    ]

    operations = [
        migrations.AddField(
            model_name="requestlog",
            name="request_id",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="The x-request-id the gateway answered with",
                max_length=128,
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="requestlog",
            index=models.Index(fields=["request_id"], name="usage_reqlog_request_id"),
        ),
    ]
