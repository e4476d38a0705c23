"""The management commands, run as a user runs them, against the live gateway."""

import httpx
import pytest
import yaml

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hi"}]


def chat(gateway_url: str, key: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": model, "messages": HELLO},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_create_use_and_revoke_a_key_from_the_command_line(manage_py, gateway_url, policy):
    created = manage_py(
        "create_api_key", "--name", "cli-app", "--models", "gpt-4o-mini,fast", "--expires-in-days", "30"
    )
    key = created.stdout.strip()
    assert key.startswith("llmp_") and "\n" not in key
    assert chat(gateway_url, key).status_code == 200
    assert chat(gateway_url, key, model="capped").status_code == 400
    assert "revoked" in manage_py("revoke_api_key", "cli-app").stdout
    response = chat(gateway_url, key)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_create_api_key_refuses_a_duplicate_name(manage_py):
    manage_py("create_api_key", "--name", "dup")
    result = manage_py("create_api_key", "--name", "dup", check=False)
    assert result.returncode != 0 and "already exists" in result.stderr
    assert "llmp_" not in result.stdout


def test_revoke_unknown_key_fails_loudly(manage_py):
    result = manage_py("revoke_api_key", "ghost", check=False)
    assert result.returncode != 0 and "ghost" in result.stderr


def test_import_then_export_round_trip(manage_py, tmp_path, gateway_url, fake_provider, api_key):
    policy = {
        "models": {
            "team-model": {
                "litellm_model": "openai/fake-model",
                "api_base": fake_provider.openai_base,
                "max_tokens": 7,
            },
            "claude-3-5-sonnet-20241022": {},
        },
        "aliases": {"team": "team-model"},
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    first = manage_py("import_policy", str(path))
    assert "3 created" in first.stdout
    assert "0 created, 0 updated, 3 unchanged" in manage_py("import_policy", str(path)).stdout
    exported = manage_py("export_policy").stdout
    assert yaml.safe_load(exported) == policy
    assert chat(gateway_url, api_key, model="team").status_code == 200
    assert fake_provider.last_request.body["max_tokens"] == 7
    (tmp_path / "again.yaml").write_text(exported)
    assert (
        "0 created, 0 updated, 3 unchanged, 0 deleted"
        in manage_py("import_policy", str(tmp_path / "again.yaml"), "--prune").stdout
    )


def test_import_policy_rejects_a_bad_file(manage_py, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  x:\n    colour: red\n")
    result = manage_py("import_policy", str(path), check=False)
    assert result.returncode != 0 and "unknown setting" in result.stderr
