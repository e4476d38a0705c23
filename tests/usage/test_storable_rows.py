"""What a caller writes reaches the request log even when a database would refuse it as it stands."""

import httpx
import pytest

from tests.support.request_log import logged_rows

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_model_name_with_a_nul_character_is_logged(gateway_url, api_key, policy):
    body = b'{"model": "nul\\u0000model", "messages": [{"role": "user", "content": "hi"}]}'  # PostgreSQL refuses NUL
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=body,
                          headers={"Authorization": f"Bearer {api_key}"}, timeout=30)  # fmt: skip
    assert response.status_code == 400
    [row] = logged_rows()
    assert row.end_reason == "rejected" and row.requested_model == "nul\ufffdmodel"
