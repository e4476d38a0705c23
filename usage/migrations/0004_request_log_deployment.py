from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0003_endpoint"),
    ]

    operations = [
        migrations.AddField(
            model_name="requestlog",
            name="deployment",
            field=models.CharField(blank=True, default="", help_text="The deployment that answered", max_length=200),
        ),
        migrations.AddField(
            model_name="requestlog",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=1, help_text="Provider calls made (more than 1: failover)"),
        ),
        migrations.AddField(
            model_name="requestlog",
            name="fallback_model",
            field=models.CharField(
                blank=True, default="", help_text="The fallback model that answered, if one did", max_length=200
            ),
        ),
    ]
