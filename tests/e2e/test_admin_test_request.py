"""The admin's "Send a test request" (api/admin_test.py): the real path, the caller's answer or error, a usage row
marked as an admin test, and only for those who may change models."""

import httpx
import orjson
import pytest
from django.urls import reverse
from django.utils.html import escape

from routing.models import AllowedModel
from routing.services import create_model
from tests.support.admin_users import logged_in, staff_user
from tests.support.live_server import free_port
from usage.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True)


def url_of(model: AllowedModel) -> str:
    return reverse("admin:routing_allowedmodel_test", args=[model.pk])


def test_the_change_page_offers_the_test_and_the_answer_comes_back(admin_client, admin_user, policy,
                                                                   fake_provider):  # fmt: skip
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    page = admin_client.get(reverse("admin:routing_allowedmodel_change", args=[model.pk])).content.decode()
    assert "Send a test request" in page and url_of(model) in page
    html = admin_client.post(url_of(model)).content.decode()
    assert "Hello! You said: Say hello." in html
    assert "ms</td>" in html and "prompt +" in html
    sent = fake_provider.last_request
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello."}]
    row = RequestLog.objects.get()
    assert row.admin_test and row.key_name == f"admin test: {admin_user.username}"
    assert row.status == 200 and row.resolved_model == "gpt-4o-mini" and row.completion_tokens > 0
    assert row.api_key_id is None and row.attempts == 1
    listed = admin_client.get("/admin/usage/requestlog/?admin_test__exact=1").content.decode()
    assert f"admin test: {admin_user.username}" in listed and "gpt-4o-mini" in listed
    assert f"{row.prompt_tokens} + {row.completion_tokens}" in listed and f"{row.latency_ms:.0f} ms" in listed
    shown = admin_client.get(f"/admin/usage/requestlog/{row.pk}/change/").content.decode()
    for label in ("Request id", "Deployment", "Attempts", "Fallback model", "Admin test"):
        assert label in shown, label


def test_one_deployment_is_tested_alone_even_switched_off(admin_client, fake_provider):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    model = create_model("pool", deployments=[
        {"name": "dead", "litellm_model": "openai/fake-model", "api_base": dead},
        {"name": "live", "litellm_model": "openai/fake-model", "api_base": fake_provider.openai_base,
         "enabled": False},
    ])  # fmt: skip
    live = model.deployments.get(name="live")
    html = admin_client.post(url_of(model), {"deployment": str(live.pk)}).content.decode()
    assert "Hello! You said: Say hello." in html and "live" in html
    dead_one = model.deployments.get(name="dead")
    html = admin_client.post(url_of(model), {"deployment": str(dead_one.pk)}).content.decode()
    assert "Error, as a caller gets it" in html
    rows = list(RequestLog.objects.order_by("created_at"))
    assert [(row.deployment, row.status == 200, row.attempts) for row in rows] == [("live", True, 1),
                                                                                   ("dead", False, 1)]  # fmt: skip


def test_a_provider_failure_shows_the_error_a_caller_gets(admin_client, policy, fake_provider, gateway_url,
                                                          api_key):  # fmt: skip
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    fake_provider.fail_next("status", status=400)
    html = admin_client.post(url_of(model)).content.decode()
    fake_provider.fail_next("status", status=400)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}
    caller = httpx.post(f"{gateway_url}/v1/chat/completions", headers={"Authorization": f"Bearer {api_key}"}, json=body)
    assert caller.status_code == 400
    shown = orjson.dumps(caller.json(), option=orjson.OPT_INDENT_2).decode()
    assert f"HTTP {caller.status_code}" in html
    assert escape(shown) in html
    row = RequestLog.objects.get(admin_test=True)
    assert row.status == 400 and row.end_reason == "provider_error"


def test_a_staff_user_without_the_permission_is_refused(policy, fake_provider):
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    viewer = logged_in(staff_user("viewer", "routing.view_allowedmodel"))
    assert viewer.post(url_of(model)).status_code == 403 and viewer.get(url_of(model)).status_code == 403
    page = viewer.get(reverse("admin:routing_allowedmodel_change", args=[model.pk])).content.decode()
    assert "Send a test request" not in page
    assert not fake_provider.requests and not RequestLog.objects.exists()
    editor = logged_in(staff_user("editor", "routing.change_allowedmodel", "routing.view_allowedmodel"))
    form = editor.get(url_of(model))  # the form only: a GET sends nothing
    assert form.status_code == 200 and "Send a test request" in form.content.decode() and not fake_provider.requests
    assert editor.post(url_of(model)).status_code == 200


def test_the_test_request_needs_the_csrf_token(admin_user, policy, fake_provider):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    assert client.post(url_of(model)).status_code == 403
    assert not fake_provider.requests


def test_a_model_served_through_litellm_answers_too(admin_client, policy, fake_provider):
    model = AllowedModel.objects.get(name="claude-3-5-sonnet-20241022")
    for _ in range(2):  # each test request on the test client's own event loop
        html = admin_client.post(url_of(model)).content.decode()
        assert "Hello! You said: Say hello." in html and "LiteLLM" in html
    assert RequestLog.objects.filter(admin_test=True, status=200).count() == 2


def test_the_test_request_runs_on_the_servers_own_loop(admin_user, policy, fake_provider, gateway_url):
    """Under ASGI (the live server) the admin view's call runs on the server's event loop, as a caller's would."""
    admin_user.set_password("pw-for-the-live-server-1")
    admin_user.save()
    model = AllowedModel.objects.get(name="gpt-4o-mini")
    with httpx.Client(base_url=gateway_url, timeout=30) as browser:
        browser.get("/admin/login/")

        def sent(referer: str) -> dict:  # the cookies are Secure: sent by hand over plain HTTP on loopback
            cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
            return {"Cookie": cookies, "Referer": f"{gateway_url}{referer}"}

        login = {"username": admin_user.username, "password": "pw-for-the-live-server-1",
                 "csrfmiddlewaretoken": browser.cookies["csrftoken"], "next": "/admin/"}  # fmt: skip
        assert browser.post("/admin/login/", data=login, headers=sent("/admin/login/")).status_code == 302
        for _ in range(2):
            answer = browser.post(url_of(model), data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                                  headers=sent("/admin/"))  # fmt: skip
            assert answer.status_code == 200 and "Hello! You said: Say hello." in answer.text
    row = RequestLog.objects.filter(admin_test=True).first()
    assert row is not None and row.request_id not in ("", "-")  # the admin request's own id
