# Each allowed model's provider settings move to a deployment of their own (issue 10). Hand-ordered: the new
# table first, the copy, then the old columns go; backwards, each model takes its first deployment's settings back.

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

MOVED_FIELDS = ("litellm_model", "api_base", "api_key_env", "timeout_seconds", "use_litellm", "resolved_provider")


def one_deployment_per_model(apps, schema_editor):
    AllowedModel = apps.get_model("routing", "AllowedModel")
    Deployment = apps.get_model("routing", "Deployment")
    for model in AllowedModel.objects.order_by("id"):
        Deployment.objects.create(model=model, **{name: getattr(model, name) for name in MOVED_FIELDS})


def first_deployment_back_to_its_model(apps, schema_editor):
    AllowedModel = apps.get_model("routing", "AllowedModel")
    Deployment = apps.get_model("routing", "Deployment")
    for model in AllowedModel.objects.order_by("id"):
        first = Deployment.objects.filter(model=model).order_by("priority", "id").first()
        if first is not None:
            for name in MOVED_FIELDS:
                setattr(model, name, getattr(first, name))
            model.save(update_fields=MOVED_FIELDS)


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0004_model_n_refused_params_provider_permission'),
    ]

    operations = [
        migrations.CreateModel(
            name='Deployment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(blank=True, default='', help_text="A label for logs and the admin, e.g. azure-eastus. Empty: the model's name and the id.", max_length=100)),
                ('litellm_model', models.CharField(blank=True, default='', help_text='LiteLLM model string, e.g. openai/gpt-4o or anthropic/claude-sonnet-4-5. Empty: the name.', max_length=200)),
                ('api_base', models.URLField(blank=True, default='', help_text='Provider base URL, if not the default.', max_length=500)),
                ('api_key_env', models.CharField(blank=True, default='', help_text='NAME of the environment variable that holds the provider key (never the key itself).', max_length=100)),
                ('timeout_seconds', models.FloatField(blank=True, help_text='Provider timeout. Empty: the default.', null=True, validators=[django.core.validators.MinValueValidator(0.1)])),
                ('use_litellm', models.BooleanField(default=False, help_text='Always call through LiteLLM, even for an OpenAI-compatible provider that would be relayed directly.')),
                ('resolved_provider', models.CharField(blank=True, default='', editable=False, help_text='Worked out on save: workers never ask LiteLLM.', max_length=64)),
                ('weight', models.PositiveIntegerField(default=1, help_text='Share of requests among deployments of one priority.', validators=[django.core.validators.MinValueValidator(1)])),
                ('priority', models.PositiveSmallIntegerField(default=0, help_text='Lower is tried first; a higher one serves only when every lower one fails.')),
                ('rpm', models.PositiveIntegerField(blank=True, help_text='Most requests a minute it is sent (its quota). Empty: no limit.', null=True, validators=[django.core.validators.MinValueValidator(1)])),
                ('tpm', models.PositiveIntegerField(blank=True, help_text='Most tokens a minute it is sent (its quota). Empty: no limit.', null=True, validators=[django.core.validators.MinValueValidator(1)])),
                ('enabled', models.BooleanField(default=True)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deployments', to='routing.allowedmodel')),
            ],
            options={
                'verbose_name': 'deployment',
                'ordering': ['priority', 'id'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('name', ''), _negated=True), fields=('model', 'name'), name='routing_deployment_unique_name', violation_error_message='Another deployment of this model has this name.')],
            },
        ),
        migrations.AddField(
            model_name='allowedmodel',
            name='fallbacks',
            field=models.CharField(blank=True, default='', help_text='Comma-separated models (or aliases) tried in order when every deployment of this one fails.', max_length=1000),
        ),
        migrations.AddField(
            model_name='allowedmodel',
            name='context_window_fallbacks',
            field=models.CharField(blank=True, default='', help_text='Comma-separated models (or aliases) tried in order when the provider reports that the request exceeds the context window.', max_length=1000),
        ),
        migrations.RunPython(one_deployment_per_model, first_deployment_back_to_its_model),
        migrations.RemoveField(model_name='allowedmodel', name='api_base'),
        migrations.RemoveField(model_name='allowedmodel', name='api_key_env'),
        migrations.RemoveField(model_name='allowedmodel', name='litellm_model'),
        migrations.RemoveField(model_name='allowedmodel', name='resolved_provider'),
        migrations.RemoveField(model_name='allowedmodel', name='timeout_seconds'),
        migrations.RemoveField(model_name='allowedmodel', name='use_litellm'),
    ]
