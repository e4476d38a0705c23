"""Request ids: the caller's `x-request-id` (when safe to repeat) or a new one, on every answer, in the request log
and on every log line made while serving the request, as plain text or JSON (LLMPROXY_LOG_FORMAT=json)."""

import json
import logging
import re
import sys
import time

import httpx
import pytest

from tests.conftest import database_url_for_subprocess
from tests.support.request_log import rows_once_logged
from tests.support.server_process import GatewayProcess

pytestmark = pytest.mark.django_db(transaction=True)

NEW_ID = re.compile(r"[0-9a-f]{32}")  # uuid4 hex
HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("sent", ["a", "req-42", "7f3c1a2b.trace:span_01-x", "x" * 128])
def test_a_plain_id_from_the_caller_is_kept(sent):
    from telemetry.request_ids import request_id_from

    assert request_id_from([(b"x-request-id", sent.encode())]) == sent


UNSAFE_IDS = {
    "empty": b"",
    "too-long": b"x" * 129,
    "space": b"has space",
    "header-injection": b"a\r\nSet-Cookie: owned=1",
    "semicolon": b"semi;colon",
    "html": b"<script>",
    "non-ascii": "caf\u00e9".encode(),
    "bytes": b"\xff\xfe",
    "tab": b"tab\tid",
    "quote": b'quote"d',
}


@pytest.mark.parametrize("sent", list(UNSAFE_IDS.values()), ids=list(UNSAFE_IDS))
def test_any_other_id_is_replaced_by_a_new_one_never_echoed(sent):
    from telemetry.request_ids import request_id_from

    made = request_id_from([(b"x-request-id", sent)])
    assert NEW_ID.fullmatch(made)


def test_the_log_filter_marks_lines_outside_a_request_with_a_dash():
    from telemetry.request_ids import RequestIdFilter

    record = logging.LogRecord("llmproxy.test", logging.INFO, __file__, 1, "started", None, None)
    assert RequestIdFilter().filter(record) and record.request_id == "-"


def chat(url: str, key: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=HELLO, timeout=30,
                      headers={"Authorization": f"Bearer {key}", **headers})  # fmt: skip


def test_the_callers_id_comes_back_and_is_stored_with_the_request(gateway_url, api_key, policy):
    response = chat(gateway_url, api_key, **{"x-request-id": "checkout-7f3c.1"})
    assert response.status_code == 200
    assert response.headers.get_list("x-request-id") == ["checkout-7f3c.1"]
    [row] = rows_once_logged(1)
    assert row.request_id == "checkout-7f3c.1"


def test_without_an_id_the_gateway_makes_one_returns_it_and_stores_it(gateway_url, api_key, policy):
    first, second = chat(gateway_url, api_key), chat(gateway_url, api_key)
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(NEW_ID.fullmatch(made) for made in ids) and ids[0] != ids[1]
    assert sorted(row.request_id for row in rows_once_logged(2)) == sorted(ids)


def test_an_unsafe_id_is_replaced_in_the_answer_and_the_log(gateway_url, api_key, policy):
    response = chat(gateway_url, api_key, **{"x-request-id": "x" * 200})
    made = response.headers["x-request-id"]
    assert NEW_ID.fullmatch(made)
    [row] = rows_once_logged(1)
    assert row.request_id == made


def test_every_answer_carries_an_id_api_errors_health_admin_static_and_edge_refusals(gateway_url, api_key, policy):
    from django.conf import settings

    big_body = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    padding = {"x-padding": "p" * (settings.LLMPROXY_MAX_HEADER_BYTES + 1)}
    answers = {
        "chat": chat(gateway_url, api_key),
        "401": chat(gateway_url, "llmp_not-a-key"),
        "models": httpx.get(f"{gateway_url}/v1/models", headers={"Authorization": f"Bearer {api_key}"}),
        "healthz": httpx.get(f"{gateway_url}/healthz"),
        "live": httpx.get(f"{gateway_url}/healthz/live"),
        "ready": httpx.get(f"{gateway_url}/healthz/ready"),
        "admin": httpx.get(f"{gateway_url}/admin/login/"),
        "static": httpx.get(f"{gateway_url}/static/admin/css/base.css"),
        "404": httpx.get(f"{gateway_url}/no/such/page"),
        "413": httpx.post(f"{gateway_url}/v1/chat/completions", content=big_body, timeout=30,
                          headers={"Authorization": f"Bearer {api_key}", "content-type": "application/json"}),
        "431": httpx.get(f"{gateway_url}/healthz", headers=padding),
    }  # fmt: skip
    assert (answers["413"].status_code, answers["431"].status_code) == (413, 431)
    for name, response in answers.items():
        assert len(response.headers.get_list("x-request-id")) == 1, name
        assert NEW_ID.fullmatch(response.headers["x-request-id"]), name
    refused = [row for row in rows_once_logged(3) if row.status == 413]  # the edge's refusal leaves its row too
    assert [row.request_id for row in refused] == [answers["413"].headers["x-request-id"]]


# Log lines, as the operator reads them from a real server's output.


@pytest.fixture
def failing_over_model(fake_provider, transactional_db):
    """A model whose first deployment answers 503 once: the gateway logs a warning and the second one answers."""
    from routing.services import create_model

    deployment = {"litellm_model": "openai/fake-model", "api_base": fake_provider.openai_base}
    create_model("pool", deployments=[{**deployment, "name": "first"}, {**deployment, "name": "second", "priority": 1}])
    fake_provider.fail_next("status", status=503)
    return "pool"


def logged_lines(server: GatewayProcess, needle: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while not (lines := [line for line in server.log().splitlines() if needle in line]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return lines


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_the_warning_about_a_failed_provider_call_carries_the_request_id(failing_over_model, api_key, log_format):
    env = {"LLMPROXY_LOG_FORMAT": log_format} if log_format == "json" else {}
    server = GatewayProcess(database_url_for_subprocess(), **env).start()
    try:
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                              json={**HELLO, "model": failing_over_model},
                              headers={"Authorization": f"Bearer {api_key}", "x-request-id": "order-1234"})  # fmt: skip
        assert (response.status_code, response.headers["x-llmproxy-attempts"]) == (200, "2")
        lines = logged_lines(server, "order-1234")
    finally:
        server.stop()
    assert len(lines) == 1, server.log()
    if log_format == "plain":
        assert " WARNING api.failover [order-1234] provider call failed: model pool, deployment first" in lines[0]
        return
    entry = json.loads(lines[0])
    assert set(entry) == {"time", "level", "logger", "message", "request_id"}
    assert (entry["level"], entry["logger"], entry["request_id"]) == ("WARNING", "api.failover", "order-1234")
    assert entry["message"].startswith("provider call failed: model pool, deployment first, attempt 1: 503")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    for line in server.log().splitlines():  # every line, from start to stop, is one JSON object
        assert json.loads(line)["request_id"], line


def test_a_json_line_keeps_a_traceback_and_a_multiline_message_on_one_line():
    from telemetry.logs import JsonFormatter

    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord("api.pipeline", logging.ERROR, __file__, 1, "two\nlines", None, sys.exc_info())
    record.request_id = "r-1"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["message"], entry["request_id"]) == ("two\nlines", "r-1")
    assert entry["exc_info"].startswith("Traceback") and "ValueError: bad\nvalue" in entry["exc_info"]
