"""Commands print only what an operator can act on."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_import_policy_prints_no_litellm_banner(manage_py, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    # A retired id LiteLLM's bundled map no longer knows: it makes LiteLLM print its "Provider List" banner.
    policy_file.write_text("models:\n  claude-3-5-sonnet-20241022: {}\n  gpt-4o: {}\n")
    result = manage_py("import_policy", str(policy_file))
    output = result.stdout + result.stderr
    assert "Provider List" not in output and "\x1b[" not in output
    assert result.stdout.splitlines() == [
        "created: model claude-3-5-sonnet-20241022",
        "created: model gpt-4o",
        "2 created, 0 updated, 0 unchanged, 0 deleted",
    ]
