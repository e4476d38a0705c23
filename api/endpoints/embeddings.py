"""POST /v1/embeddings: the Embeddings adapter of the request pipeline (api/pipeline.py).

OpenAI's shape (https://platform.openai.com/docs/api-reference/embeddings/create): `input` as a string, an array of
strings, an array of tokens or an array of token arrays; `encoding_format` float or base64; `dimensions`; `user`.
No output tokens, so no cap; tokens-per-minute reserve the input estimate; usage (input tokens) comes from the body.
OpenAI-wire providers get the request relayed and their bytes forwarded. Others go through `litellm.aembedding`,
asked for floats (not every provider has base64), the answer reduced to OpenAI's fields and packed as base64 here
when the caller asked for it.
"""

import base64
import struct
from typing import Any, Literal

import orjson
from django.http import HttpResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from api.accounting import RequestAccount
from api.errors import invalid_request
from api.pipeline import Endpoint
from api.provider import call, litellm_arguments, relay_api_key
from api.provider_errors import error_for_status
from api.relay import relay
from api.schemas import MAX_INT, load_json_object, refuse_control_fields, validation_error
from routing.resolver import Route
from usage.cost import estimate_tokens

PATH = "/embeddings"  # below the provider's api_base
MAX_INPUTS = 2048  # OpenAI's limit of inputs per request
INPUT_SHAPES = "a string, an array of strings, an array of tokens (integers) or an array of token arrays"
TOKEN_ARRAY_SCHEMA = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}
INPUT_SCHEMAS = [
    {"type": "string", "minLength": 1},
    {"type": "array", "minItems": 1, "maxItems": MAX_INPUTS, "items": {"type": "string", "minLength": 1}},
    TOKEN_ARRAY_SCHEMA,
    {"type": "array", "minItems": 1, "maxItems": MAX_INPUTS, "items": TOKEN_ARRAY_SCHEMA},
]


class EmbeddingsRequestBody(BaseModel):
    """The declared fields (other fields pass through to OpenAI-wire providers); `input` is checked by
    input_problem, which names the offending item."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: Any = Field(description=INPUT_SHAPES, json_schema_extra={"anyOf": INPUT_SCHEMAS})  # input_problem checks
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1, le=MAX_INT)
    user: StrictStr | None = None


VALIDATED_FIELDS = ("encoding_format", "dimensions", "user")
KNOWN_FIELDS = frozenset({"model", "input", *VALIDATED_FIELDS})


class EmbeddingsRequest:
    """A parsed embeddings request: what the gateway decides on and what it forwards."""

    __slots__ = ("as_base64", "extra_body", "input", "model", "params")
    stream = False

    def __init__(self, validated: EmbeddingsRequestBody, raw: dict[str, Any]) -> None:
        self.model = validated.model
        self.input: str | list = raw["input"]
        self.params: dict[str, Any] = {
            name: getattr(validated, name) for name in VALIDATED_FIELDS if getattr(validated, name) is not None
        }
        self.extra_body: dict[str, Any] = {name: value for name, value in raw.items() if name not in KNOWN_FIELDS}
        self.as_base64 = validated.encoding_format == "base64"

    @property
    def items(self) -> list:
        """The separate inputs: strings or token arrays."""
        value = self.input
        if isinstance(value, str) or (value and not isinstance(value[0], (str, list))):
            return [value]
        return value


def is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT


def token_array_problem(value: Any, where: str) -> tuple[str, str] | None:
    if not isinstance(value, list):
        return where, f"Invalid value for '{where}': expected {INPUT_SHAPES}, not a mix."
    if not value:
        return where, f"Invalid value for '{where}': a token array must not be empty."
    for index, token in enumerate(value):
        if not is_token(token):
            return f"{where}.[{index}]", f"Invalid value for '{where}.[{index}]': a token is an integer 0 or above."
    return None


def input_problem(value: Any) -> tuple[str, str] | None:
    """What is wrong with `input`, as (param, message), or None."""
    if isinstance(value, str):
        return None if value else ("input", "Invalid value for 'input': the string must not be empty.")
    if not isinstance(value, list):
        return "input", f"Invalid value for 'input': expected {INPUT_SHAPES}."
    if not value:
        return "input", "Invalid value for 'input': the array must not be empty."
    first = value[0]
    if isinstance(first, int) and not isinstance(first, bool):
        return token_array_problem(value, "input")
    if not isinstance(first, (str, list)):
        return "input.[0]", f"Invalid value for 'input.[0]': expected {INPUT_SHAPES}."
    if len(value) > MAX_INPUTS:
        return "input", f"Too many inputs: {len(value)} sent, at most {MAX_INPUTS} are accepted."
    for index, item in enumerate(value):
        where = f"input.[{index}]"
        if isinstance(first, str):
            if not isinstance(item, str):
                return where, f"Invalid value for '{where}': expected {INPUT_SHAPES}, not a mix."
            if not item:
                return where, f"Invalid value for '{where}': the string must not be empty."
        else:
            problem = token_array_problem(item, where)
            if problem:
                return problem
    return None


def parse_embeddings_request(body: bytes) -> EmbeddingsRequest:
    raw = load_json_object(body)
    refuse_control_fields(raw)
    problem = input_problem(raw["input"]) if "input" in raw else None
    if problem:
        raise invalid_request(problem[1], param=problem[0])
    try:
        validated = EmbeddingsRequestBody.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    return EmbeddingsRequest(validated, raw)


def input_estimate(request: EmbeddingsRequest) -> int:
    """Input tokens, cheaply: a token array's length, a string's characters / 4 (at least one per input)."""
    return sum(len(item) if isinstance(item, list) else max(1, len(item) // 4) for item in request.items)


class EmbeddingsEndpoint(Endpoint):
    name = "embeddings"
    path = "/v1/embeddings"
    token_fields = ()

    def parse(self, body: bytes) -> EmbeddingsRequest:
        return parse_embeddings_request(body)

    def reservation(self, route: Route, request: EmbeddingsRequest) -> int:
        return input_estimate(request)

    def estimate_prompt_tokens(self, litellm_model: str, request: EmbeddingsRequest) -> int:
        return sum(len(item) if isinstance(item, list) else estimate_tokens(litellm_model, text=item)
                   for item in request.items)  # fmt: skip

    async def relay(self, route: Route, request: EmbeddingsRequest, account: RequestAccount) -> HttpResponse:
        body: dict[str, Any] = {**route.params, **route.extra_body, "model": route.model.provider_model,
                                "input": request.input}  # fmt: skip
        response = await relay.post(route, PATH, body, account, relay_api_key(route), stream=False)
        raw, data = await relay.read_json(response, route, account)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            message = "the provider's answer is not a list of embeddings"
            raise error_for_status(502, message, model=route.requested_model)
        account.set_usage(data.get("usage"))
        return HttpResponse(raw, content_type="application/json")

    async def via_litellm(self, route: Route, request: EmbeddingsRequest, account: RequestAccount) -> HttpResponse:
        arguments = litellm_arguments(route, {"input": request.input}, provider_names={})
        arguments.pop("encoding_format", None)  # floats from every provider; packed below when asked
        response = await call("aembedding", route, account, arguments)
        account.provider_done()
        usage = openai_usage(getattr(response, "usage", None))
        account.set_usage(usage)
        return HttpResponse(embeddings_body(response, usage, as_base64=request.as_base64),
                            content_type="application/json")  # fmt: skip


EMBEDDINGS = EmbeddingsEndpoint()


def _part(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def openai_usage(usage: Any) -> dict[str, int]:
    prompt = _part(usage, "prompt_tokens") if usage is not None else None
    prompt = prompt if isinstance(prompt, int) else 0
    total = _part(usage, "total_tokens") if usage is not None else None
    return {"prompt_tokens": prompt, "total_tokens": total if isinstance(total, int) else prompt}


def packed(vector: Any) -> Any:
    """A float vector as OpenAI's base64: little-endian float32 values (a vector already packed stays as it is)."""
    if isinstance(vector, str):
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embeddings_body(response: Any, usage: dict[str, int], *, as_base64: bool) -> bytes:
    """LiteLLM's EmbeddingResponse as the JSON OpenAI sends: no LiteLLM additions."""
    data = []
    for position, item in enumerate(_part(response, "data") or ()):
        vector = _part(item, "embedding")
        index = _part(item, "index")
        data.append({"object": "embedding", "index": index if isinstance(index, int) else position,
                     "embedding": packed(vector) if as_base64 else vector})  # fmt: skip
    return orjson.dumps({"object": "list", "data": data, "model": _part(response, "model") or "", "usage": usage})
