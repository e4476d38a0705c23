"""Deployments as data: validation, the one service that writes them, the policy version, the data migration."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from routing.models import AllowedModel, Deployment, ModelAlias
from routing.services import create_model, save_deployments
from routing.versioning import read_policy_version

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_DEPLOYMENTS = ("routing", "0004_model_n_refused_params_provider_permission")
DEPLOYMENTS = ("routing", "0005_deployments_and_fallbacks")


def problems(**fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        create_model("m", **fields)
    return caught.value.message_dict


def test_the_single_form_makes_one_deployment_and_a_list_makes_several():
    one = create_model("gpt-4o", litellm_model="openai/gpt-4o", api_base="http://10.0.0.1/v1", max_tokens=9)
    deployment = one.deployments.get()
    assert (deployment.litellm_model, deployment.api_base, deployment.resolved_provider) == (
        "openai/gpt-4o", "http://10.0.0.1/v1", "openai"
    )  # fmt: skip
    assert deployment.label == f"gpt-4o#{deployment.pk}" and one.max_tokens == 9
    several = create_model("pool", deployments=[
        {"name": "east", "litellm_model": "openai/a", "weight": 3},
        {"name": "backup", "litellm_model": "anthropic/claude-sonnet-4-5", "priority": 1, "rpm": 60},
    ])  # fmt: skip
    assert [(d.label, d.resolved_provider, d.weight, d.priority) for d in several.deployments.all()] == [
        ("east", "openai", 3, 0), ("backup", "anthropic", 1, 1)
    ]  # fmt: skip
    nameless = create_model("claude-3-5-sonnet-20241022")  # no settings at all: one deployment routed by the name
    assert nameless.deployments.get().provider == "anthropic"


def test_a_model_is_made_with_its_deployments_or_not_at_all():
    assert "deployments[1].api_key_env" in problems(
        deployments=[{"litellm_model": "openai/a"}, {"litellm_model": "openai/b", "api_key_env": "sk-live-0123"}]
    )
    assert not AllowedModel.objects.exists() and not Deployment.objects.exists()
    with pytest.raises(ValidationError, match="not both"):
        create_model("m", litellm_model="openai/a", deployments=[{"litellm_model": "openai/b"}])


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        ({"api_key_env": "sk-abc"}, "deployments[0].api_key_env", "looks like a secret"),
        ({"litellm_model": "openai/a", "api_key_env": "DJANGO_SECRET_KEY"}, "deployments[0].api_key_env", "own"),
        ({"litellm_model": "hosted_vllm/llama"}, "deployments[0].litellm_model", "needs an API base"),
        ({"litellm_model": "mystery"}, "deployments[0].litellm_model", "No provider can route 'mystery'"),
        ({"litellm_model": "openai/a", "timeout_seconds": 0}, "deployments[0].timeout_seconds", "greater than"),
    ],
)
def test_a_deployment_validates_its_provider_settings(fields, where, message):
    assert message in " ".join(problems(**fields)[where])


def test_fallbacks_name_other_models_or_aliases_in_order():
    create_model("a", litellm_model="openai/a")
    b = create_model("b", litellm_model="openai/b")
    ModelAlias.objects.create(alias="bee", target=b)
    model = create_model("m", litellm_model="openai/m", fallbacks=" b ,a", context_window_fallbacks="bee")
    assert model.fallbacks == "b, a"  # stored in one spelling
    assert model.fallback_names == ("b", "a") and model.context_window_fallback_names == ("bee",)
    ModelAlias.objects.create(alias="me", target=model)
    for fallbacks, message in [("m", "itself"), ("me", "itself"), ("a, nowhere", "'nowhere' is neither"),
                               ("a, b, a", "'a' is named twice")]:  # fmt: skip
        model.fallbacks = fallbacks
        with pytest.raises(ValidationError) as caught:
            model.full_clean()
        assert message in caught.value.message_dict["fallbacks"][0]


def test_saving_deployments_keeps_ids_in_order_and_drops_the_rest():
    model = create_model("m", deployments=[{"litellm_model": "openai/a"}, {"litellm_model": "openai/b"}])
    first, second = model.deployments.order_by("id")
    assert save_deployments(model, [{"litellm_model": "openai/a"}, {"litellm_model": "openai/b"}]) is False
    assert save_deployments(model, [{"litellm_model": "openai/a", "weight": 5}]) is True
    assert list(model.deployments.values_list("pk", "weight")) == [(first.pk, 5)]
    assert not Deployment.objects.filter(pk=second.pk).exists()


def test_every_deployment_change_moves_the_policy_version():
    model = create_model("m", litellm_model="openai/a")
    versions = [read_policy_version()]
    deployment = model.deployments.get()
    deployment.weight = 2
    deployment.save()
    versions.append(read_policy_version())
    Deployment.objects.create(model=model, litellm_model="openai/b")
    versions.append(read_policy_version())
    deployment.delete()
    versions.append(read_policy_version())
    assert None not in versions and len(set(versions)) == len(versions)
    model.delete()
    assert not Deployment.objects.exists()


def migrate_to(*targets: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets))
    return executor.loader.project_state(list(targets)).apps


@pytest.fixture
def at_latest_afterwards():
    yield
    executor = MigrationExecutor(connection)
    migrate_to(*executor.loader.graph.leaf_nodes())


def test_the_migration_gives_each_model_one_deployment_and_gives_the_first_back(at_latest_afterwards):
    old = migrate_to(BEFORE_DEPLOYMENTS).get_model("routing", "AllowedModel")
    settings = {"litellm_model": "openai/fake", "api_base": "http://10.0.0.2/v1", "api_key_env": "OPENAI_API_KEY",
                "timeout_seconds": 12.5, "use_litellm": True, "resolved_provider": "openai"}  # fmt: skip
    old.objects.create(name="configured", max_tokens=7, **settings)
    old.objects.create(name="claude-3-5-sonnet-20241022", resolved_provider="anthropic")

    new = migrate_to(DEPLOYMENTS)
    rows = new.get_model("routing", "Deployment").objects.order_by("model__name")
    fields = ("model__name", *settings, "weight", "priority", "enabled")
    assert list(rows.values_list(*fields)) == [
        ("claude-3-5-sonnet-20241022", "", "", "", None, False, "anthropic", 1, 0, True),
        ("configured", *settings.values(), 1, 0, True),
    ]
    configured = new.get_model("routing", "AllowedModel").objects.get(name="configured")
    new.get_model("routing", "Deployment").objects.create(model=configured, litellm_model="openai/second", priority=1)

    back = migrate_to(BEFORE_DEPLOYMENTS).get_model("routing", "AllowedModel")
    restored = back.objects.filter(name="configured").values(*settings, "max_tokens").get()
    assert restored == {**settings, "max_tokens": 7}  # the first deployment (lowest priority), not the backup
