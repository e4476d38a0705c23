"""The fake provider speaks OpenAI's embeddings wire format (POST /v1/embeddings)."""

import base64
import math
import struct

import httpx
import openai
import pytest

from tests.fake_provider.helpers import post


def embed(provider, **body) -> httpx.Response:
    return post(provider, "/embeddings", {"model": "fake-embedding-3-small", "input": "hello world", **body})


def test_a_string_embeds_to_one_deterministic_unit_vector_with_usage(fake_provider):
    response = embed(fake_provider)
    assert response.status_code == 200
    reply = response.json()
    assert (reply["object"], reply["model"]) == ("list", "fake-embedding-3-small")
    assert reply["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    [item] = reply["data"]
    assert (item["object"], item["index"], len(item["embedding"])) == ("embedding", 0, 1536)
    assert math.isclose(math.fsum(value * value for value in item["embedding"]), 1.0, rel_tol=1e-5)
    assert embed(fake_provider).json()["data"][0]["embedding"] == item["embedding"]
    assert embed(fake_provider, input="other text").json()["data"][0]["embedding"] != item["embedding"]
    sent = fake_provider.last_request
    assert (sent.path, sent.headers["authorization"]) == ("/v1/embeddings", "Bearer sk-test")


def test_batches_and_token_arrays(fake_provider):
    reply = embed(fake_provider, input=["a b c", "d"]).json()
    assert [item["index"] for item in reply["data"]] == [0, 1]
    assert reply["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    tokens = embed(fake_provider, input=[1, 2, 3]).json()
    assert len(tokens["data"]) == 1 and tokens["usage"]["prompt_tokens"] == 3
    batch = embed(fake_provider, input=[[1, 2], [3, 4, 5]]).json()
    assert len(batch["data"]) == 2 and batch["usage"]["prompt_tokens"] == 5
    assert batch["data"][0]["embedding"] != batch["data"][1]["embedding"]


def test_base64_packs_the_same_float32_values(fake_provider):
    floats = embed(fake_provider).json()["data"][0]["embedding"]
    packed = embed(fake_provider, encoding_format="base64").json()["data"][0]["embedding"]
    raw = base64.b64decode(packed)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == floats


def test_dimensions_shorten_and_renormalise_for_models_that_take_them(fake_provider):
    full = embed(fake_provider, model="text-embedding-3-large").json()["data"][0]["embedding"]
    assert len(full) == 3072
    short = embed(fake_provider, model="text-embedding-3-large", dimensions=8).json()["data"][0]["embedding"]
    assert len(short) == 8
    assert math.isclose(math.fsum(value * value for value in short), 1.0, rel_tol=1e-5)
    ratio = short[0] / full[0]
    assert all(math.isclose(s, f * ratio, rel_tol=1e-4, abs_tol=1e-6) for s, f in zip(short, full[:8], strict=True))


def test_models_without_dimensions_refuse_them_with_openais_body(fake_provider):
    for model in ("text-embedding-ada-002", "fake-embedding-legacy"):
        response = embed(fake_provider, model=model, dimensions=8)
        assert response.status_code == 400
        assert response.json() == {"error": {"message": "This model does not support specifying dimensions.",
                                             "type": "invalid_request_error", "param": None, "code": None}}  # fmt: skip
    assert embed(fake_provider, dimensions=0).json()["error"]["param"] == "dimensions"
    assert embed(fake_provider, dimensions=1537).status_code == 400


@pytest.mark.parametrize("value", ["", [], [""], [[]], ["a", [1]], [True], None, {"text": "a"}, ["x"] * 2049])
def test_invalid_input_is_openais_400(fake_provider, value):
    response = embed(fake_provider, input=value)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("'$.input' is invalid.") and error["type"] == "invalid_request_error"


def test_other_refusals(fake_provider):
    unknown = embed(fake_provider, model="fake-model")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert embed(fake_provider, model="gpt-4o").status_code == 404
    extra = embed(fake_provider, api_base="http://elsewhere")
    assert extra.status_code == 400
    assert extra.json()["error"]["message"] == "Unrecognized request argument supplied: api_base"
    assert embed(fake_provider, encoding_format="int8").status_code == 400
    assert embed(fake_provider, user="u-1").status_code == 200


def test_faults_apply_to_embeddings(fake_provider):
    fake_provider.fail_next("status", status=429, headers={"retry-after": "3"})
    limited = embed(fake_provider)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["message"] == "fake provider error 429"
    fake_provider.fail_next("invalid_json")
    assert embed(fake_provider).text == "{not json"
    fake_provider.fail_next("cut")
    with pytest.raises(httpx.RemoteProtocolError):
        embed(fake_provider)
    fake_provider.fail_next("slow", delay=0.2)
    assert embed(fake_provider).status_code == 200


def test_the_openai_sdk_embeds_in_its_default_base64_and_as_floats(fake_provider):
    client = openai.OpenAI(base_url=fake_provider.openai_base, api_key="sk-test", max_retries=0)
    default = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert fake_provider.last_request.body["encoding_format"] == "base64"
    floats = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"],
                                      encoding_format="float")  # fmt: skip
    assert [item.embedding for item in default.data] == [item.embedding for item in floats.data]
    assert default.usage.prompt_tokens == 3 and len(default.data[0].embedding) == 1536
    short = client.embeddings.create(model="text-embedding-3-small", input="hello world", dimensions=4)
    assert len(short.data[0].embedding) == 4
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=4)
    assert refused.value.body["message"] == "This model does not support specifying dimensions."
