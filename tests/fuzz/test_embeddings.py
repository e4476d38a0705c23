"""Property-based embeddings bodies through the live gateway: never a 500, every error OpenAI-shaped."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import EXAMPLES, FuzzClient
from tests.fuzz.strategies import CONTENT_TYPES, broken_copies, embedding_bodies

pytestmark = pytest.mark.django_db(transaction=True)

EMBEDDING_EXAMPLES = EXAMPLES  # two requests each: the body, then a broken copy of it


@pytest.fixture
def embedding_models(policy, fake_provider) -> None:
    from routing.models import ModelAlias
    from routing.services import create_model

    small = create_model(
        "embed-small", litellm_model="openai/fake-embedding-3-small", api_base=fake_provider.openai_base
    )
    ModelAlias.objects.create(alias="embed-alias", target=small)


def test_embeddings_shaped_bodies(fuzz: FuzzClient, embedding_models):
    answered: dict[str, int] = {"ok": 0, "param": 0}

    def send_body(content: bytes, content_type: str | None):
        headers = {**fuzz.auth, **({} if content_type is None else {"Content-Type": content_type})}
        return fuzz.request("POST", "/v1/embeddings", content=content, headers=headers)

    @settings(max_examples=EMBEDDING_EXAMPLES)
    @given(body=embedding_bodies, content_type=st.sampled_from(CONTENT_TYPES), breakage=st.data())
    def send(body, content_type, breakage):
        send_body(breakage.draw(broken_copies(orjson.dumps(body))), content_type)
        response = send_body(orjson.dumps(body), content_type)
        if response.is_success:
            answered["ok"] += 1
            assert isinstance(response.json()["data"], list)
        elif response.status_code == 400 and response.json()["error"]["param"]:
            answered["param"] += 1
            top = response.json()["error"]["param"].split(".")[0]
            assert top in body or top in {"model", "input"}, (response.json(), body)

    send()
    assert fuzz.sent >= 2 * EMBEDDING_EXAMPLES
    assert answered["ok"] > EMBEDDING_EXAMPLES // 100, answered
    assert answered["param"] > EMBEDDING_EXAMPLES // 10, answered
