import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models.functions import Coalesce


class Migration(migrations.Migration):
    dependencies = [
        ("keys", "0001_initial"),
        ("teams", "0001_initial"),
        ("usage", "0004_request_log_deployment"),
    ]

    operations = [
        migrations.AddField(
            model_name="requestlog",
            name="team",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="teams.team"
            ),
        ),
        migrations.AddField(
            model_name="requestlog",
            name="team_name",
            field=models.CharField(blank=True, default="", help_text="The key's team at the time", max_length=100),
        ),
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(fields=["team", "created_at"], name="usage_reque_team_id_1f15b1_idx"),
        ),
        migrations.AddField(
            model_name="dailyusage",
            name="team",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="teams.team"
            ),
        ),
        migrations.AddField(
            model_name="dailyusage",
            name="team_name",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddIndex(
            model_name="dailyusage",
            index=models.Index(fields=["team", "day"], name="usage_daily_team_id_52b577_idx"),
        ),
        # The rollup groups by key id and team too (a renamed key keeps its history; a new key given an old name
        # starts its own): the new constraint is looser than the old one, so existing rows always meet it.
        migrations.RemoveConstraint(model_name="dailyusage", name="daily_usage_unique_endpoint"),
        migrations.AddConstraint(
            model_name="dailyusage",
            constraint=models.UniqueConstraint(
                models.F("day"),
                Coalesce("api_key", models.Value(0)),
                models.F("key_name"),
                Coalesce("team", models.Value(0)),
                models.F("model"),
                models.F("endpoint"),
                name="daily_usage_unique_key_team",
            ),
        ),
        migrations.CreateModel(
            name="BudgetAlert",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("subject", models.CharField(choices=[("key", "Key"), ("team", "Team")], max_length=8)),
                (
                    "team",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="teams.team",
                    ),
                ),
                (
                    "api_key",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="keys.apikey",
                    ),
                ),
                (
                    "name",
                    models.CharField(help_text="The key's or team's name when the alert was sent", max_length=100),
                ),
                (
                    "period",
                    models.CharField(
                        help_text="The budget period: day:YYYY-MM-DD, month:YYYY-MM or total", max_length=32
                    ),
                ),
                ("percent", models.PositiveSmallIntegerField(help_text="The alert threshold, in % of the budget")),
                ("spent_usd", models.DecimalField(decimal_places=6, max_digits=14)),
                ("budget_usd", models.DecimalField(decimal_places=6, max_digits=14)),
                ("recipients", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "sent_at",
                    models.DateTimeField(blank=True, help_text="Empty: nobody to email, or sending failed", null=True),
                ),
            ],
            options={"ordering": ["-created_at"]},
        ),
        migrations.AddConstraint(
            model_name="budgetalert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("subject", "team")),
                fields=("team", "period"),
                name="one_team_budget_alert_per_period",
            ),
        ),
        migrations.AddConstraint(
            model_name="budgetalert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("subject", "key")),
                fields=("api_key", "period"),
                name="one_key_budget_alert_per_period",
            ),
        ),
    ]
