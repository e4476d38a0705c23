"""Every answer outside the admin is OpenAI-shaped: unknown paths (DEBUG on or off), wrong methods, model lookup."""

import httpx
import openai
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    return error


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/no-such-endpoint"), ("GET", "/v1/files/abc"),
                                              ("DELETE", "/nothing")])  # fmt: skip
def test_unknown_paths_are_openai_shaped_with_debug_on_or_off(client, settings, debug, method, path):
    settings.DEBUG = debug
    response = client.generic(method, path, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def test_the_admin_keeps_its_own_pages_and_redirect(client):
    assert client.get("/admin").status_code == 301
    assert client.get("/admin/").status_code == 302  # to the login page


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/v1/chat/completions", "POST"), ("PUT", "/v1/chat/completions", "POST"),
    ("POST", "/v1/models", "GET"), ("DELETE", "/v1/models/gpt-4o-mini", "GET"), ("POST", "/healthz", "GET"),
])  # fmt: skip
def test_a_wrong_method_is_an_openai_shaped_405(gateway_url, api_key, policy, method, path, allowed):
    response = httpx.request(method, f"{gateway_url}{path}", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    error = assert_openai_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed and method in error["message"]


def test_models_retrieve_with_the_openai_sdk(openai_client):
    model = openai_client.models.retrieve("gpt-4o-mini")
    assert model.id == "gpt-4o-mini" and model.object == "model"
    assert openai_client.models.retrieve("fast").id == "fast"  # an alias is a model to the caller


def test_models_retrieve_refuses_what_the_key_may_not_use(gateway_url, policy):
    from keys.services import create_api_key

    key = create_api_key(name="narrow", models=["fast"]).plaintext
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0)
    assert client.models.retrieve("fast").id == "fast"
    for name in ("capped", "disabled-model", "no-such-model"):
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve(name)
        assert caught.value.body["code"] == "model_not_found"


def test_a_short_key_with_the_right_prefix_is_told_it_is_invalid(gateway_url, policy):
    response = httpx.get(f"{gateway_url}/v1/models", headers={"Authorization": "Bearer llmp_short"}, timeout=30)
    error = assert_openai_error(response, 401, "invalid_api_key")
    assert "start with" not in error["message"]
