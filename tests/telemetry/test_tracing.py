"""Tracing: the spans of a real request through the live gateway (the SDK's in-memory exporter), the caller's W3C
traceparent as their parent, nothing at all when tracing is off, and real OTLP/HTTP export from a server process."""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import REPO_ROOT, database_url_for_subprocess
from tests.support.server_process import GatewayProcess

pytestmark = pytest.mark.django_db(transaction=True)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"


@pytest.fixture
def spans() -> Iterator:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from telemetry import tracing

    exporter = InMemorySpanExporter()
    tracing.enable_for_tests(exporter)
    yield exporter
    tracing.disable_for_tests()


def finished(exporter, name: str, count: int = 1, timeout: float = 5.0) -> list:
    """The ended spans called `name`, once there are `count` (a stream's request span ends after its last byte)."""
    deadline = time.monotonic() + timeout
    while len(found := [span for span in exporter.get_finished_spans() if span.name == name]) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return found


@pytest.fixture
def team_key(transactional_db) -> str:
    from keys.services import create_api_key
    from teams.services import create_team

    team = create_team(name="research", rpm_limit=1000)
    return create_api_key(name="tracing-app", team=team, rpm_limit=100).plaintext


@pytest.fixture
def pool(fake_provider, transactional_db) -> str:
    """A model of two deployments on the fake provider; the first answers 503 once."""
    from routing.services import create_model

    deployment = {"litellm_model": "openai/fake-model", "api_base": fake_provider.openai_base}
    create_model("pool", deployments=[{**deployment, "name": "first"}, {**deployment, "name": "second", "priority": 1}])
    fake_provider.fail_next("status", status=503)
    return "pool"


def chat(url: str, key: str, model: str = "pool", stream: bool = False, **headers: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {key}", **headers})  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_request_that_fails_over_once_is_one_trace(gateway_url, team_key, pool, spans, stream):
    from opentelemetry.trace import SpanKind, StatusCode

    response = chat(gateway_url, team_key, stream=stream, **{"x-request-id": "trace-me-1"})
    assert (response.status_code, response.headers["x-llmproxy-attempts"]) == (200, "2")

    [request] = finished(spans, "llmproxy.request")
    assert request.parent is None and request.kind == SpanKind.SERVER
    assert request.status.status_code == StatusCode.UNSET
    assert dict(request.attributes) == {
        "llmproxy.endpoint": "chat",
        "llmproxy.request_id": "trace-me-1",
        "gen_ai.request.model": "pool",
        "llmproxy.model": "pool",
        "llmproxy.deployment": "second",
        "llmproxy.key": "tracing-app",
        "llmproxy.team": "research",
        "llmproxy.stream": stream,
        "llmproxy.attempts": 2,
        "llmproxy.end_reason": "completed",
        "http.response.status_code": 200,
        "gen_ai.usage.input_tokens": request.attributes["gen_ai.usage.input_tokens"],
        "gen_ai.usage.output_tokens": request.attributes["gen_ai.usage.output_tokens"],
    }
    assert request.attributes["gen_ai.usage.output_tokens"] > 0

    trace_id, request_span_id = request.context.trace_id, request.context.span_id
    [admission] = finished(spans, "llmproxy.admission")
    first, second = sorted(finished(spans, "llmproxy.provider_call", 2), key=lambda span: span.start_time)
    for child in (admission, first, second):
        assert (child.context.trace_id, child.parent.span_id) == (trace_id, request_span_id)
        assert request.start_time <= child.start_time and child.end_time <= request.end_time
    assert admission.start_time < first.start_time < first.end_time <= second.start_time
    assert dict(admission.attributes) == {"llmproxy.limits": ("key.rpm", "team.rpm"), "llmproxy.refused": False}

    common = {"llmproxy.model": "pool", "llmproxy.provider": "openai", "llmproxy.path": "relay"}
    assert first.kind == second.kind == SpanKind.CLIENT
    failure = {"http.response.status_code": 503, "error.type": "provider_unavailable"}
    assert dict(first.attributes) == {**common, "llmproxy.attempt": 1, "llmproxy.deployment": "first", **failure}
    assert first.status.status_code == StatusCode.ERROR
    assert dict(second.attributes) == {**common, "llmproxy.attempt": 2, "llmproxy.deployment": "second",
                                       "http.response.status_code": 200}  # fmt: skip
    assert second.status.status_code == StatusCode.UNSET


def test_the_usage_write_is_a_trace_of_its_own(gateway_url, api_key, policy, spans):
    from api.gateway import gateway

    assert chat(gateway_url, api_key, model="gpt-4o-mini").status_code == 200
    [request] = finished(spans, "llmproxy.request")
    gateway.drain_threadsafe()
    writes = finished(spans, "llmproxy.usage_write")
    assert writes and sum(write.attributes["llmproxy.rows"] for write in writes) == 1
    assert all(write.parent is None and write.attributes["llmproxy.written"] for write in writes)
    assert all(write.context.trace_id != request.context.trace_id for write in writes)


def test_the_callers_traceparent_is_the_parent_of_the_request(gateway_url, api_key, policy, spans):
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    assert chat(gateway_url, api_key, model="gpt-4o-mini", traceparent=traceparent).status_code == 200
    [request] = finished(spans, "llmproxy.request")
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert format(request.parent.span_id, "016x") == PARENT_SPAN_ID and request.parent.is_remote
    [call] = finished(spans, "llmproxy.provider_call")
    assert format(call.context.trace_id, "032x") == TRACE_ID


def test_a_refused_admission_is_marked_and_the_request_is_not_a_server_error(gateway_url, policy, spans):
    from opentelemetry.trace import StatusCode

    from keys.services import create_api_key

    key = create_api_key(name="one-a-minute", rpm_limit=1).plaintext
    assert chat(gateway_url, key, model="gpt-4o-mini").status_code == 200
    assert chat(gateway_url, key, model="gpt-4o-mini").status_code == 429
    admitted, refused = sorted(finished(spans, "llmproxy.admission", 2), key=lambda span: span.start_time)
    assert dict(admitted.attributes) == {"llmproxy.limits": ("key.rpm",), "llmproxy.refused": False}
    assert dict(refused.attributes) == {"llmproxy.limits": ("key.rpm",), "llmproxy.refused": True}
    assert refused.status.status_code == StatusCode.ERROR
    requests = sorted(finished(spans, "llmproxy.request", 2), key=lambda span: span.start_time)
    assert [span.attributes["http.response.status_code"] for span in requests] == [200, 429]
    assert requests[1].attributes["llmproxy.end_reason"] == "rejected"
    assert requests[1].status.status_code == StatusCode.UNSET  # a 4xx is an answer, not a failure of the gateway
    assert len(finished(spans, "llmproxy.provider_call")) == 1  # the refused request never reached a provider


def test_with_tracing_off_no_span_is_made(gateway_url, api_key, policy, spans):
    from api.gateway import gateway
    from telemetry import tracing

    tracing.disable_for_tests()
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    assert chat(gateway_url, api_key, model="gpt-4o-mini", traceparent=traceparent).status_code == 200
    assert chat(gateway_url, api_key, model="gpt-4o-mini", stream=True).status_code == 200
    gateway.drain_threadsafe()
    assert tracing.ENABLED is False and spans.get_finished_spans() == ()


def test_with_tracing_off_the_sdk_is_not_even_loaded():
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    code = ("import django, sys; django.setup(); import llmproxy_site.asgi; "
            "print(sorted(name for name in sys.modules if name.startswith('opentelemetry')))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            env={**env, "DJANGO_SETTINGS_MODULE": "tests.settings"})  # fmt: skip
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


class Collector:
    """An OTLP/HTTP trace receiver: what the gateway's exporter posts to /v1/traces."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.path == "/v1/traces":
                    collector.bodies.append(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[dict, object]]:
        """(resource attributes, span) of everything received."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        found = []
        for body in list(self.bodies):
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
                found += [(resource, span) for scope in resource_spans.scope_spans for span in scope.spans]
        return found


def test_spans_are_exported_over_otlp_http_when_an_endpoint_is_set(api_key, policy):
    collector = Collector()
    server = GatewayProcess(database_url_for_subprocess(), OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
                            OTEL_BSP_SCHEDULE_DELAY="50").start()  # fmt: skip
    try:
        response = chat(server.url, api_key, model="gpt-4o-mini", **{"x-request-id": "exported-1"})
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while not any(span.name == "llmproxy.provider_call" for _, span in collector.spans()):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    finally:
        server.stop()
        collector.server.shutdown()
    received = collector.spans()
    [(resource, request)] = [(resource, span) for resource, span in received if span.name == "llmproxy.request"]
    assert resource["service.name"] == "llmproxy"
    attributes = {kv.key: kv.value for kv in request.attributes}
    assert attributes["llmproxy.request_id"].string_value == "exported-1"
    assert attributes["http.response.status_code"].int_value == 200
    names = {span.name for _, span in received if span.trace_id == request.trace_id}
    assert names == {"llmproxy.request", "llmproxy.admission", "llmproxy.provider_call"}
