from django.db import migrations, models


class Migration(migrations.Migration):
    """The endpoint a request came through; every row before this migration came through chat completions."""

    dependencies = [
        ("usage", "0002_request_log_cache_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="requestlog",
            name="endpoint",
            field=models.CharField(
                choices=[("chat", "Chat"), ("embeddings", "Embeddings"), ("responses", "Responses"),
                         ("messages", "Messages")],
                default="chat",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="dailyusage",
            name="endpoint",
            field=models.CharField(
                choices=[("chat", "Chat"), ("embeddings", "Embeddings"), ("responses", "Responses"),
                         ("messages", "Messages")],
                default="chat",
                max_length=16,
            ),
        ),
        migrations.RemoveConstraint(model_name="dailyusage", name="daily_usage_unique"),
        migrations.AddConstraint(
            model_name="dailyusage",
            constraint=models.UniqueConstraint(
                fields=("day", "key_name", "model", "endpoint"), name="daily_usage_unique_endpoint"
            ),
        ),
        migrations.AlterModelOptions(
            name="dailyusage",
            options={"ordering": ["-day", "key_name", "model", "endpoint"], "verbose_name": "usage dashboard",
                     "verbose_name_plural": "usage dashboard"},
        ),
    ]
