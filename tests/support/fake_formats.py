"""What the fake provider needs to know about each route it serves: one `WireFormat` per endpoint.

The provider (fake_provider.py) runs faults and the HTTP exchange; a wire format answers "what would this provider
say": its error body, its refusals (headers, then body), its JSON reply, its stream, how a stream fails, and a
stream carrying one huge SSE line.
"""

from collections.abc import Callable
from dataclasses import dataclass

from tests.support import fake_anthropic as anthropic
from tests.support import fake_embeddings as embeddings
from tests.support import fake_wire as wire
from tests.support.fake_responses import ResponsesApi
from tests.support.fake_wire import Event

Refusal = tuple[int, dict] | None


@dataclass(frozen=True)
class WireFormat:
    error: Callable[..., dict]  # (status, message=None, kind=...) -> the provider's error body
    refusal: Callable[[dict], Refusal]
    json: Callable[[dict, int], dict]
    stream: Callable[[dict, int, int | None], list[Event]] | None = None
    stream_error: Callable[[dict, int, int], list[Event]] | None = None  # (body, number, events already sent)
    big_line: Callable[[dict, int, int, int | None], list[Event]] | None = None  # (body, number, size, chunks)
    header_refusal: Callable[[dict[str, str]], Refusal] = lambda headers: None
    bad_json_event: bytes = b""  # the `event:` line before a data line that is not JSON
    indent: bool = True  # error bodies indented as OpenAI sends them; Anthropic's are compact


def openai_big_line(body: dict, number: int, size: int, chunks: int | None) -> list[Event]:
    events = wire.openai_stream(body, number, chunks)
    head = [event for event in events if event.kind == "head"]
    return [*head, wire.openai_big_delta(body, number, size), *events[len(head) :]]


def wire_formats(responses: ResponsesApi) -> dict[str, WireFormat]:
    """Route name (fake_provider.ROUTES) -> its wire format; `responses` keeps the stored responses."""
    return {
        "openai": WireFormat(
            error=wire.openai_error, refusal=wire.openai_refusal, json=wire.openai_json, stream=wire.openai_stream,
            stream_error=lambda body, number, sent: [wire.openai_stream_error()], big_line=openai_big_line,
        ),
        "embeddings": WireFormat(
            error=wire.openai_error, refusal=embeddings.embeddings_refusal, json=embeddings.embeddings_json
        ),
        "responses": WireFormat(
            error=wire.openai_error, refusal=responses.refusal, json=responses.json, stream=responses.stream,
            stream_error=responses.stream_error, bad_json_event=b"event: response.created\n",
            big_line=lambda body, number, size, chunks: responses.stream(body, number, chunks, size),
        ),
        "anthropic": WireFormat(
            error=anthropic.anthropic_error, refusal=anthropic.anthropic_refusal, json=anthropic.anthropic_json,
            stream=anthropic.anthropic_stream, header_refusal=anthropic.anthropic_header_refusal,
            stream_error=lambda body, number, sent: [anthropic.anthropic_stream_error()],
            bad_json_event=b"event: message_start\n", indent=False,
        ),
        "models": WireFormat(error=wire.openai_error, refusal=lambda body: None, json=lambda body, number: wire.MODELS),
    }  # fmt: skip
