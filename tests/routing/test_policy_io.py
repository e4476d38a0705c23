import json

import pytest
import yaml

from routing.models import AllowedModel, ModelAlias
from routing.policy_io import PolicyFileError, dump_policy_yaml, export_policy, import_policy, read_policy_file

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
    assert (gpt.litellm_model, gpt.max_tokens, gpt.api_key_env) == ("openai/gpt-4o", 1024, "OPENAI_API_KEY")
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
    assert list(AllowedModel.objects.values_list("name", "max_tokens", "api_base")) == [("gpt-4o", 10, "")]


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
        AllowedModel(name="local", litellm_model=f"{prefix}/llama-3").full_clean()
    assert "API base" in str(caught.value.message_dict["litellm_model"])
    AllowedModel(name="local", litellm_model=f"{prefix}/llama-3", api_base="http://10.0.0.5:8000/v1").full_clean()


def test_a_refused_param_must_be_a_field_name():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        AllowedModel(name="m", litellm_model="openai/gpt-4o", refused_params="service_tier, not a name").full_clean()
    assert "refused_params" in caught.value.message_dict
