"""LiteLLM's response objects as OpenAI's wire shape: what a caller sees is the same on the relay and on LiteLLM.

LiteLLM adds fields OpenAI never sends (`provider_specific_fields`, `thinking_blocks`, `usage.cost`, usage details
such as `text_tokens` or Anthropic's cache counters); the relay forwards the provider's own bytes, which have none.
Choices and messages lose LiteLLM's additions; usage keeps only OpenAI's documented fields.
"""

from typing import Any

import orjson

LITELLM_ONLY_FIELDS = frozenset({"provider_specific_fields", "thinking_blocks"})
USAGE_FIELDS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})
USAGE_DETAIL_FIELDS = {
    "prompt_tokens_details": frozenset({"cached_tokens", "audio_tokens"}),
    "completion_tokens_details": frozenset(
        {"reasoning_tokens", "audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"}
    ),
}


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    shaped = {name: value for name, value in usage.items() if name in USAGE_FIELDS}
    for name, allowed in USAGE_DETAIL_FIELDS.items():
        details = usage.get(name)
        if isinstance(details, dict):
            kept = {key: value for key, value in details.items() if key in allowed and value is not None}
            if kept:
                shaped[name] = kept
    return shaped


def _openai_choice(choice: dict[str, Any]) -> dict[str, Any]:
    shaped = {name: value for name, value in choice.items() if name not in LITELLM_ONLY_FIELDS}
    for part in ("message", "delta"):
        body = shaped.get(part)
        if isinstance(body, dict):
            shaped[part] = {name: value for name, value in body.items() if name not in LITELLM_ONLY_FIELDS}
    return shaped


def openai_shaped(response: Any, *, without_usage: bool = False) -> dict[str, Any]:
    """A LiteLLM ModelResponse or ModelResponseStream as the dict OpenAI would have sent."""
    data = response.model_dump(exclude_none=True)
    data["choices"] = [_openai_choice(choice) for choice in data.get("choices") or ()]
    usage = data.pop("usage", None)
    if usage and not without_usage:
        data["usage"] = openai_usage(usage)
    return data


def completion_body(response: Any) -> bytes:
    return orjson.dumps(openai_shaped(response))


def chunk_event(chunk: Any, *, without_usage: bool = False) -> bytes:
    return b"data: " + orjson.dumps(openai_shaped(chunk, without_usage=without_usage)) + b"\n\n"
