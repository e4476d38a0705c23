import json

import pytest
import yaml

from routing.models import AllowedModel, Deployment, ModelAlias
from routing.policy_io import PolicyFileError, dump_policy_yaml, export_policy, import_policy, read_policy_file
from routing.services import create_model

pytestmark = pytest.mark.django_db(transaction=True)

POLICY = {
    "models": {
        "gpt-4o": {
            "litellm_model": "openai/gpt-4o",
            "api_base": "http://127.0.0.1:9000/v1",
            "api_key_env": "OPENAI_API_KEY",
            "max_tokens": 1024,
        },
        "claude-3-5-sonnet-20241022": {},
    },
    "aliases": {"fast": "gpt-4o"},
}


def write(tmp_path, name: str, data) -> object:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return path


def test_import_creates_models_and_aliases(tmp_path):
    result = import_policy(read_policy_file(write(tmp_path, "policy.yaml", POLICY)))
    assert sorted(result.created) == ["alias fast", "model claude-3-5-sonnet-20241022", "model gpt-4o"]
    gpt = AllowedModel.objects.get(name="gpt-4o")
    deployment = gpt.deployments.get()
    assert (deployment.litellm_model, gpt.max_tokens, deployment.api_key_env) == (
        "openai/gpt-4o",
        1024,
        "OPENAI_API_KEY",
    )
    assert ModelAlias.objects.get(alias="fast").target == gpt


def test_import_is_idempotent_and_json_works(tmp_path):
    import_policy(read_policy_file(write(tmp_path, "policy.yaml", POLICY)))
    again = import_policy(read_policy_file(write(tmp_path, "policy.json", POLICY)))
    assert again.created == again.updated == again.deleted == []
    assert len(again.unchanged) == 3


def test_import_upserts_and_prune_deletes_the_rest(tmp_path):
    import_policy(read_policy_file(write(tmp_path, "policy.yaml", POLICY)))
    smaller = {"models": {"gpt-4o": {"litellm_model": "openai/gpt-4o", "max_tokens": 10}}, "aliases": {}}
    result = import_policy(read_policy_file(write(tmp_path, "small.yaml", smaller)), prune=True)
    assert result.updated == ["model gpt-4o"]
    assert sorted(result.deleted) == ["alias fast", "model claude-3-5-sonnet-20241022"]
    assert list(AllowedModel.objects.values_list("name", "max_tokens", "deployments__api_base")) == [("gpt-4o", 10, "")]


def test_export_round_trips_unchanged(tmp_path):
    import_policy(read_policy_file(write(tmp_path, "policy.yaml", POLICY)))
    exported = dump_policy_yaml(export_policy())
    assert yaml.safe_load(exported) == {"models": {**POLICY["models"]}, "aliases": POLICY["aliases"]}
    (tmp_path / "exported.yaml").write_text(exported)
    result = import_policy(read_policy_file(tmp_path / "exported.yaml"), prune=True)
    assert result.created == result.updated == result.deleted == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"models": {"x": {"colour": "red"}}}, "unknown setting"),
        ({"models": {}, "aliases": {"fast": "missing"}}, "unknown model"),
        ({"models": [1, 2]}, "mappings"),
        ({"modles": {}}, "keys 'models' and 'aliases'"),
        ({"models": {"my-llama": {}}}, "No provider can route"),
        ({"models": {"m": {"litellm_model": "openai/m", "api_key_env": "sk-live-secret"}}}, "secret"),
    ],
)
def test_bad_policy_files_are_refused_with_a_clear_message(tmp_path, data, message):
    with pytest.raises(PolicyFileError, match=message):
        import_policy(read_policy_file(write(tmp_path, "bad.yaml", data)))
    assert not AllowedModel.objects.exists()


def test_invalid_yaml_is_refused(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models: {gpt: [unclosed")
    with pytest.raises(PolicyFileError, match="not valid YAML"):
        read_policy_file(path)


def test_max_n_and_refused_params_round_trip(tmp_path):
    data = {
        "models": {
            "gpt-4o": {"litellm_model": "openai/gpt-4o", "max_n": 2, "refused_params": "service_tier, audio"},
            "listed": {"litellm_model": "openai/gpt-4o-mini", "refused_params": ["web_search_options", "audio"]},
        },
        "aliases": {},
    }
    import_policy(read_policy_file(write(tmp_path, "policy.yaml", data)))
    gpt = AllowedModel.objects.get(name="gpt-4o")
    assert (gpt.max_n, gpt.refused_param_names) == (2, {"service_tier", "audio"})
    assert AllowedModel.objects.get(name="listed").refused_param_names == {"web_search_options", "audio"}
    (tmp_path / "exported.yaml").write_text(dump_policy_yaml(export_policy()))
    assert yaml.safe_load((tmp_path / "exported.yaml").read_text())["models"]["gpt-4o"]["max_n"] == 2
    result = import_policy(read_policy_file(tmp_path / "exported.yaml"), prune=True)
    assert result.created == result.updated == result.deleted == []


@pytest.mark.parametrize("prefix", ["hosted_vllm", "openai_like", "custom_openai"])
def test_a_self_hosted_model_without_api_base_is_refused_on_import_and_on_save(tmp_path, prefix):
    from django.core.exceptions import ValidationError

    data = {"models": {"local": {"litellm_model": f"{prefix}/llama-3"}}}
    with pytest.raises(PolicyFileError, match="API base"):
        import_policy(read_policy_file(write(tmp_path, "bad.yaml", data)))
    with pytest.raises(ValidationError) as caught:
        create_model("local", litellm_model=f"{prefix}/llama-3")
    assert "API base" in str(caught.value.message_dict["deployments[0].litellm_model"])
    assert not AllowedModel.objects.exists()  # the model and its deployment are made together or not at all
    create_model("local", litellm_model=f"{prefix}/llama-3", api_base="http://10.0.0.5:8000/v1")


def test_a_refused_param_must_be_a_field_name():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        create_model("m", litellm_model="openai/gpt-4o", refused_params="service_tier, not a name")
    assert "refused_params" in caught.value.message_dict


DEPLOYED = {
    "models": {
        "gpt-4o": {
            "max_tokens": 100,
            "fallbacks": ["claude", "cheap"],
            "context_window_fallbacks": ["gpt-4o-long"],
            "deployments": [
                {"name": "east", "litellm_model": "azure/gpt-4o", "api_base": "https://east.example.com",
                 "api_key_env": "AZURE_API_KEY", "weight": 3, "rpm": 600},
                {"name": "west", "litellm_model": "openai/gpt-4o", "api_base": "http://10.0.0.7:8000/v1", "tpm": 90000},
                {"litellm_model": "openai/gpt-4o", "priority": 1, "timeout_seconds": 20.0, "use_litellm": True},
            ],
        },
        "gpt-4o-long": {"litellm_model": "openai/gpt-4o-long"},
        "claude": {"litellm_model": "anthropic/claude-sonnet-4-5"},
    },
    "aliases": {"cheap": "claude"},
}  # fmt: skip


def test_a_deployments_list_imports_exports_and_round_trips(tmp_path):
    result = import_policy(read_policy_file(write(tmp_path, "policy.yaml", DEPLOYED)))
    assert sorted(result.created) == ["alias cheap", "model claude", "model gpt-4o", "model gpt-4o-long"]
    gpt = AllowedModel.objects.get(name="gpt-4o")
    rows = list(gpt.deployments.order_by("id").values_list("name", "resolved_provider", "weight", "priority", "rpm"))
    assert rows == [("east", "azure", 3, 0, 600), ("west", "openai", 1, 0, None), ("", "openai", 1, 1, None)]
    assert gpt.fallback_names == ("claude", "cheap") and gpt.context_window_fallback_names == ("gpt-4o-long",)
    ids = list(gpt.deployments.order_by("id").values_list("id", flat=True))

    exported = yaml.safe_load(dump_policy_yaml(export_policy()))
    assert exported == DEPLOYED  # the single form where it says everything, the list where it does not
    again = import_policy(read_policy_file(write(tmp_path, "exported.yaml", exported)), prune=True)
    assert again.created == again.updated == again.deleted == []
    assert list(gpt.deployments.order_by("id").values_list("id", flat=True)) == ids  # health keeps its keys


def test_a_model_goes_from_several_deployments_to_one_and_back_to_the_single_form(tmp_path):
    import_policy(read_policy_file(write(tmp_path, "policy.yaml", DEPLOYED)))
    first = AllowedModel.objects.get(name="gpt-4o").deployments.order_by("id").first()
    single = {"models": {"gpt-4o": {"litellm_model": "openai/gpt-4o", "api_base": "http://10.0.0.7:8000/v1"}}}
    result = import_policy(read_policy_file(write(tmp_path, "single.yaml", single)), prune=True)
    assert result.updated == ["model gpt-4o"]
    assert sorted(result.deleted) == ["alias cheap", "model claude", "model gpt-4o-long"]
    deployment = Deployment.objects.get()
    assert deployment.pk == first.pk and (deployment.name, deployment.weight, deployment.rpm) == ("", 1, None)
    assert AllowedModel.objects.get().fallbacks == ""
    assert yaml.safe_load(dump_policy_yaml(export_policy())) == {**single, "aliases": {}}


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"deployments": [{"litellm_model": "openai/a"}, {"litellm_model": "openai/b", "colour": "red"}]},
         r"models\.m\.deployments\[1\]: unknown setting\(s\) colour"),
        ({"deployments": [{"litellm_model": "openai/a"}, {"api_key_env": "DJANGO_SECRET_KEY"}]},
         r"models\.m\.deployments\[1\]\.api_key_env: DJANGO_SECRET_KEY is one of the gateway's own settings"),
        ({"deployments": [{"litellm_model": "openai/a"}, {"litellm_model": "hosted_vllm/llama"}]},
         r"models\.m\.deployments\[1\]\.litellm_model: .*needs an API base"),
        ({"deployments": [{"litellm_model": "openai/a", "weight": 0}]},
         r"models\.m\.deployments\[0\]\.weight: Ensure this value is greater than or equal to 1"),
        ({"deployments": [{"name": "a", "litellm_model": "openai/a"}, {"name": "a", "litellm_model": "openai/b"}]},
         r"models\.m\.deployments\[1\]"),
        ({"litellm_model": "openai/a", "deployments": [{"litellm_model": "openai/b"}]},
         r"models\.m: litellm_model belong in each of its deployments"),
        ({"deployments": {"litellm_model": "openai/a"}}, r"models\.m\.deployments: a list"),
        ({"litellm_model": "openai/a", "fallbacks": ["m"]},
         r"models\.m\.fallbacks: A model cannot fall back to itself"),
        ({"litellm_model": "openai/a", "context_window_fallbacks": ["nowhere"]},
         r"models\.m\.context_window_fallbacks: 'nowhere' is neither an allowed model nor an alias"),
        ({"litellm_model": "openai/a", "fallbacks": [1, 2]}, r"models\.m\.fallbacks: a list of model names"),
        ({"litellm_model": "my-llama"}, r"models\.m\.litellm_model: No provider can route 'my-llama'"),
    ],
)  # fmt: skip
def test_a_bad_model_is_refused_naming_the_model_and_the_deployment(tmp_path, model, message):
    with pytest.raises(PolicyFileError, match=message):
        import_policy(read_policy_file(write(tmp_path, "bad.yaml", {"models": {"m": model}})))
    assert not AllowedModel.objects.exists() and not Deployment.objects.exists()


def test_fallbacks_may_name_models_and_aliases_defined_later_in_the_file_or_already_stored(tmp_path):
    create_model("stored", litellm_model="openai/stored")
    data = {
        "models": {
            "first": {"litellm_model": "openai/first", "fallbacks": "second, quick, stored"},
            "second": {"litellm_model": "openai/second", "fallbacks": ["first"]},
        },
        "aliases": {"quick": "second"},
    }
    import_policy(read_policy_file(write(tmp_path, "policy.yaml", data)))
    assert AllowedModel.objects.get(name="first").fallback_names == ("second", "quick", "stored")
    assert AllowedModel.objects.get(name="second").fallback_names == ("first",)
    result = import_policy(read_policy_file(write(tmp_path, "again.yaml", data)))
    assert result.updated == [] and result.created == []
