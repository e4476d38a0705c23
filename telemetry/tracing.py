"""OpenTelemetry spans of a request's way through the gateway, exported over OTLP/HTTP when
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.

    llmproxy.request            the whole request, until its account is finished (the end of a stream); the child
      llmproxy.admission        of the caller's W3C `traceparent` when it sent one
      llmproxy.provider_call    one per attempt (failover), until the provider's answer (or first byte) is in hand
    llmproxy.usage_write        a batch of request-log rows: a trace of its own, as a batch holds many requests

Off (no endpoint), every hook on the request path is one check of `ENABLED` (or of the account's span being None)
and nothing more: the SDK is not even imported. `setup()` runs once per worker process, at ASGI lifespan start-up
(a server run without lifespan has no tracing); the exporter reads the standard OTEL_EXPORTER_OTLP_* variables
itself (headers, timeout, compression, TLS) and its batch processor the OTEL_BSP_* ones.

Callers hand plain values: this module imports none of the gateway's apps. Spans are started with an explicit
parent and never made "current", so nothing is attached to (or leaks through) the request's context.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

ENABLED = False

_provider: Any = None  # opentelemetry.sdk.trace.TracerProvider, once set up
_tracer: Any = None
_root: Any = None  # an empty context: the parent of a span that starts a trace


def configured() -> bool:
    """Whether the environment asks for tracing (an OTLP endpoint, and the SDK not switched off)."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return bool(endpoint) and os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def setup() -> None:
    """Install the OTLP exporter when the environment asks for tracing; once per process."""
    if _provider is not None or not configured():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    _install(BatchSpanProcessor(OTLPSpanExporter()))


def shutdown() -> None:
    """Export what is still batched and switch tracing off (ASGI lifespan shutdown)."""
    global ENABLED, _provider, _tracer
    provider, ENABLED, _provider, _tracer = _provider, False, None, None
    if provider is not None:
        provider.shutdown()


def enable_for_tests(exporter: Any) -> None:
    """Trace into `exporter` (the SDK's InMemorySpanExporter), each span exported as it ends."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    shutdown()
    _install(SimpleSpanProcessor(exporter))


def disable_for_tests() -> None:
    shutdown()


def _install(processor: Any) -> None:
    global ENABLED, _provider, _tracer, _root
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    service = os.environ.get("OTEL_SERVICE_NAME") or "llmproxy"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(processor)
    _provider, _tracer, _root = provider, provider.get_tracer("llmproxy"), Context()
    ENABLED = True


def start_request(headers: Mapping[str, str], **attributes: Any) -> Any:
    """The request's span, the child of the caller's `traceparent` when it sent one; ended by `end_request`."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    return _tracer.start_span("llmproxy.request", context=propagate.extract(headers), kind=SpanKind.SERVER,
                              attributes=_plain(attributes))  # fmt: skip


def end_request(span: Any, *, status: int, **attributes: Any) -> None:
    """End the request's span with its outcome; a 5xx marks it failed (a 4xx is the gateway answering a caller)."""
    span.set_attributes(_plain({"http.response.status_code": status, **attributes}))
    if status >= 500:
        from opentelemetry.trace import StatusCode

        span.set_status(StatusCode.ERROR, attributes.get("error.type") or str(status))
    span.end()


@contextmanager
def span(name: str, parent: Any = None, *, client: bool = False, **attributes: Any) -> Iterator[Any]:
    """A span under `parent` (None: a trace of its own), ended on exit; an exception marks it failed."""
    from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context

    context = _root if parent is None else set_span_in_context(parent)
    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    current = _tracer.start_span(name, context=context, kind=kind, attributes=_plain(attributes))
    try:
        yield current
    except BaseException as exc:
        current.set_status(StatusCode.ERROR, type(exc).__name__)
        raise
    finally:
        current.end()


def failed(span: Any, description: str) -> None:
    from opentelemetry.trace import StatusCode

    span.set_status(StatusCode.ERROR, description)


def _plain(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float and their lists; None means "not known": left out."""
    return {name: value for name, value in attributes.items() if value is not None}
