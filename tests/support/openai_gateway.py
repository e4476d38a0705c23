"""The live gateway's OpenAI-shaped endpoints as a client reaches them: the official `openai` SDK, or plain HTTP for
what the SDK would not send (tests/e2e/test_embeddings.py, test_responses.py, ...).

    post = partial(post_json, path="/v1/embeddings")   # then post(gateway_url, key, body)
"""

import httpx
import openai


def client_for(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20)


def post_json(gateway_url: str, key: str, body: dict, *, path: str) -> httpx.Response:
    return httpx.post(f"{gateway_url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def assert_invalid_request(response: httpx.Response, param: str) -> None:
    """An OpenAI-shaped 400 that names the parameter at fault."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error
