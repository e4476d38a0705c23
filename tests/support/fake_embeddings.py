"""OpenAI's embeddings wire format (https://platform.openai.com/docs/api-reference/embeddings/create), as the fake
provider serves it at `POST /v1/embeddings`.

- `input`: a string, a list of strings, a token array (list of ints) or a list of token arrays; an empty string,
  an empty list, an empty token array, more than 2048 inputs or a mixed list is OpenAI's 400 "'$.input' is invalid.
  Please check the API reference: https://platform.openai.com/docs/api-reference.".
- `encoding_format`: "float" (default) gives lists of floats; "base64" gives each vector as little-endian float32
  values packed and base64-encoded (what the `openai` SDK asks for by default, then decodes).
- `dimensions`: honoured by models that support it (text-embedding-3-* and "fake-embedding-3*" ids: the vector is
  the model's full vector cut to that length and renormalised, as OpenAI shortens embeddings); other models refuse
  it with OpenAI's 400 "This model does not support specifying dimensions.".
- Served ids: text-embedding-3-small (1536 dimensions), text-embedding-3-large (3072), text-embedding-ada-002 (1536)
  and every id starting with "fake-embedding" (3072 if it contains "large", else 1536); any other id is the chat
  side's 404 `model_not_found`. Unknown top-level fields are OpenAI's 400 "Unrecognized request argument supplied".
- Vectors are deterministic: unit length, seeded by a hash of (model, input), so equal inputs embed equally.
- `usage`: `{"prompt_tokens": N, "total_tokens": N}`, N counted as in chat (words of a string, the length of a
  token array).
"""

import base64
import hashlib
import random
import struct
from typing import Any

EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
EMBEDDING_IDS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
MAX_INPUTS = 2048
INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
NO_DIMENSIONS = "This model does not support specifying dimensions."


def embedding_error(message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def serves(model: Any) -> bool:
    return isinstance(model, str) and (model in EMBEDDING_IDS or model.startswith("fake-embedding"))


def full_dimensions(model: str) -> int:
    if model in EMBEDDING_IDS:
        return EMBEDDING_IDS[model]
    return 3072 if "large" in model else 1536


def takes_dimensions(model: str) -> bool:
    return model.startswith(("text-embedding-3", "fake-embedding-3"))


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_token_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(is_int(token) and token >= 0 for token in value)


def inputs_of(value: Any) -> list[str | list[int]] | None:
    """The separate inputs of `input`, or None when OpenAI would refuse it."""
    if isinstance(value, str):
        return [value] if value else None
    if is_token_array(value):
        return [value]
    if not isinstance(value, list) or not value or len(value) > MAX_INPUTS:
        return None
    if all(isinstance(item, str) and item for item in value) or all(is_token_array(item) for item in value):
        return value
    return None


def embeddings_refusal(body: dict) -> tuple[int, dict] | None:
    """The 4xx the real OpenAI API answers to this embeddings body, with OpenAI's error body, or None."""
    model = body.get("model")
    if not serves(model):
        message = f"The model `{model}` does not exist or you do not have access to it."
        return 404, embedding_error(message, code="model_not_found")
    unknown = sorted(set(body) - EMBEDDING_FIELDS)
    if unknown:
        return 400, embedding_error(f"Unrecognized request argument supplied: {unknown[0]}")
    if inputs_of(body.get("input")) is None:
        return 400, embedding_error(INVALID_INPUT)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        return 400, embedding_error(f"{encoding!r} is not one of ['float', 'base64'] - 'encoding_format'")
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if not takes_dimensions(model):
            return 400, embedding_error(NO_DIMENSIONS)
        if not is_int(dimensions) or not 1 <= dimensions <= full_dimensions(model):
            message = f"Invalid value for 'dimensions' = {dimensions}. Must be between 1 and {full_dimensions(model)}."
            return 400, embedding_error(message, param="dimensions", code="invalid_value")
    return None


def token_count(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else max(len(item.split()), 1)


def vector(model: str, item: str | list[int], dimensions: int) -> list[float]:
    """A deterministic unit vector, rounded to float32 so the float and base64 renderings agree."""
    seed = hashlib.blake2b(repr((model, item)).encode(), digest_size=16).digest()
    rng = random.Random(seed)
    values = [rng.uniform(-1.0, 1.0) for _ in range(full_dimensions(model))][:dimensions]
    norm = sum(value * value for value in values) ** 0.5 or 1.0
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in values))))


def packed(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def embeddings_json(body: dict, number: int = 0) -> dict:
    model = body["model"]
    items = inputs_of(body["input"]) or []
    dimensions = body.get("dimensions") or full_dimensions(model)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(items):
        values = vector(model, item, dimensions)
        data.append({"object": "embedding", "index": index, "embedding": packed(values) if as_base64 else values})
    tokens = sum(token_count(item) for item in items)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
