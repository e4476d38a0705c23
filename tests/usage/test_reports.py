"""usage_report, the admin dashboard, the key page and pruning."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from usage.recorder import write_rows

pytestmark = pytest.mark.django_db(transaction=True)


def log_row(**overrides) -> dict:
    row = {
        "created_at": timezone.now(), "api_key_id": None, "key_name": "app-a", "requested_model": "fast",
        "resolved_model": "gpt-4o-mini", "litellm_model": "openai/gpt-4o-mini", "streamed": False, "status": 200,
        "error_code": "", "end_reason": "completed", "prompt_tokens": 10, "completion_tokens": 5,
        "total_tokens": 15, "usage_estimated": False, "cost_usd": Decimal("0.001"), "latency_ms": 12.0,
        "ttft_ms": None,
    }  # fmt: skip
    row.update(overrides)
    return row


@pytest.fixture
def usage_data() -> None:
    yesterday = timezone.now() - timedelta(days=1)
    write_rows([
        log_row(created_at=yesterday),
        log_row(created_at=yesterday, status=502, end_reason="provider_error", prompt_tokens=3, completion_tokens=0,
                total_tokens=3, cost_usd=None),
        log_row(key_name="app-b", resolved_model="claude", prompt_tokens=20, completion_tokens=7, total_tokens=27),
        log_row(key_name="app-b", resolved_model="embed", endpoint="embeddings", prompt_tokens=8, completion_tokens=0,
                total_tokens=8, cost_usd=Decimal("0.0002")),
    ])  # fmt: skip


def test_usage_report_json_has_exactly_the_documented_keys(manage_py, usage_data):
    rows = json.loads(manage_py("usage_report", "--json").stdout)
    assert rows == [
        {"key": "app-a", "team": "", "model": "gpt-4o-mini", "endpoint": "chat", "requests": 2, "errors": 1,
         "prompt_tokens": 13, "completion_tokens": 5, "cost_usd": 0.001},
        {"key": "app-b", "team": "", "model": "claude", "endpoint": "chat", "requests": 1, "errors": 0,
         "prompt_tokens": 20, "completion_tokens": 7, "cost_usd": 0.001},
        {"key": "app-b", "team": "", "model": "embed", "endpoint": "embeddings", "requests": 1, "errors": 0,
         "prompt_tokens": 8, "completion_tokens": 0, "cost_usd": 0.0002},
    ]  # fmt: skip


def test_usage_report_filters_by_key_and_day(manage_py, usage_data):
    only_b = json.loads(manage_py("usage_report", "--json", "--key", "app-b").stdout)
    assert [row["key"] for row in only_b] == ["app-b", "app-b"]
    today = timezone.now().date().isoformat()
    since_today = json.loads(manage_py("usage_report", "--json", "--since", today).stdout)
    assert [(row["key"], row["requests"]) for row in since_today] == [("app-b", 1), ("app-b", 1)]
    table = manage_py("usage_report").stdout
    assert "app-a" in table and "gpt-4o-mini" in table and "requests" in table
    assert manage_py("usage_report", "--since", "yesterday", check=False).returncode != 0


def test_usage_report_filters_by_endpoint(manage_py, usage_data):
    embeddings = json.loads(manage_py("usage_report", "--json", "--endpoint", "embeddings").stdout)
    assert [(row["model"], row["endpoint"], row["prompt_tokens"]) for row in embeddings] == [("embed", "embeddings", 8)]
    chat = json.loads(manage_py("usage_report", "--json", "--endpoint", "chat").stdout)
    assert {row["endpoint"] for row in chat} == {"chat"} and len(chat) == 2
    assert "embeddings" in manage_py("usage_report").stdout  # the table has an endpoint column
    assert manage_py("usage_report", "--endpoint", "completions", check=False).returncode != 0


def test_dashboard_renders_charts_for_staff(admin_client, usage_data):
    response = admin_client.get("/admin/usage/dailyusage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<figure class="usage-chart"><figcaption>') == 3 and html.count("<rect ") >= 3
    assert "Requests per day" in html and "Cost per day" in html
    assert "app-a" in html and "claude" in html
    filtered = admin_client.get("/admin/usage/dailyusage/?key=app-b&days=7").content.decode()
    assert "app-b" in filtered and "<td>app-a</td>" not in filtered


def test_dashboard_filters_by_endpoint(admin_client, usage_data):
    html = admin_client.get("/admin/usage/dailyusage/").content.decode()
    assert '<option value="embeddings">embeddings</option>' in html and "<td>embeddings</td>" in html
    embeddings = admin_client.get("/admin/usage/dailyusage/?endpoint=embeddings").content.decode()
    assert "<td>embed</td>" in embeddings and "<td>claude</td>" not in embeddings
    assert "<strong>1</strong> requests" in embeddings
    chat = admin_client.get("/admin/usage/dailyusage/?endpoint=chat").content.decode()
    assert "<td>embed</td>" not in chat and "<td>claude</td>" in chat


def test_dashboard_requires_staff(client, usage_data):
    response = client.get("/admin/usage/dailyusage/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_key_page_shows_totals_and_remaining_budget(admin_client):
    from keys.services import create_api_key

    key = create_api_key(name="app-a", max_budget_usd=Decimal("1"), budget_period="month").api_key
    write_rows([log_row(api_key_id=key.pk), log_row(api_key_id=key.pk)])
    html = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
    assert "2 requests" in html
    assert "Remaining budget: $0.9980 of $1" in html


def test_request_log_admin_lists_rows(admin_client, usage_data):
    html = admin_client.get("/admin/usage/requestlog/").content.decode()
    assert "provider_error" in html


def test_prune_deletes_old_rows_but_keeps_the_rollup(manage_py, usage_data):
    from usage.models import DailyUsage, RequestLog

    write_rows([log_row(created_at=timezone.now() - timedelta(days=100))])
    assert RequestLog.objects.count() == 5
    output = manage_py("prune_usage", "--days", "30").stdout
    assert "deleted 1 request-log rows" in output
    assert RequestLog.objects.count() == 4
    assert sum(DailyUsage.objects.values_list("requests", flat=True)) == 5
