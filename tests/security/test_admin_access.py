"""Admin access: staff only, CSRF on the login form, lockout after repeated failed logins."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from lockout.models import FailedLogin
from tests.support.admin_users import PASSWORD
from tests.support.admin_users import staff_user as make_staff_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_user():
    """Staff as a team has them: not a superuser, no permissions (tests/security/test_admin_permissions.py walks
    what each kind of user may see)."""
    return make_staff_user("ops")


def test_a_superuser_logs_in_and_sees_our_models():
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    assert log_in(client, PASSWORD, username="root").status_code == 302
    index = client.get("/admin/").content.decode()
    for page in ("/admin/keys/apikey/", "/admin/routing/allowedmodel/", "/admin/usage/dailyusage/"):
        assert page in index


def log_in(client: Client, password: str, username: str = "ops"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def is_logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_lockout_after_repeated_failures_refuses_even_the_right_password(staff_user, settings):
    settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES = 5
    client = Client()
    for _ in range(5):
        response = log_in(client, "wrong-password")
        assert response.status_code == 200 and "Please enter the correct" in response.content.decode()
    assert FailedLogin.objects.filter(username="ops").count() == 5  # in the database: shared by every worker

    response = log_in(client, PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert not is_logged_in(client)
    assert FailedLogin.objects.filter(username="ops").count() == 5  # a refused attempt does not extend the lock

    other_address = Client(REMOTE_ADDR="10.0.0.9")  # per username + address: the lock is not a denial of service
    assert log_in(other_address, PASSWORD).status_code == 302


def test_lockout_ends_with_the_window_and_success_clears_the_count(staff_user, settings):
    settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES = 2
    client = Client()
    log_in(client, "wrong-1")
    log_in(client, "wrong-2")
    assert "Too many failed" in log_in(client, PASSWORD).content.decode()
    with override_settings(LLMPROXY_ADMIN_LOGIN_LOCKOUT_MINUTES=0.0001):  # the window has passed
        assert log_in(client, PASSWORD).status_code == 302
    assert not FailedLogin.objects.filter(username="ops").exists()


def test_lockout_is_seen_by_another_process(staff_user, manage_py):
    for _ in range(5):
        log_in(Client(), "wrong-password")
    check = (
        "from lockout.rules import locked_until;"
        "print('LOCKED' if locked_until(username='ops', ip_address='127.0.0.1') else 'OPEN')"
    )
    assert manage_py("shell", "--no-imports", "-c", check).stdout.strip() == "LOCKED"


def test_admin_login_post_requires_a_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "ops", "password": PASSWORD})
    assert response.status_code == 403
    assert not is_logged_in(client)

    page = client.get("/admin/login/")  # the form's own token is accepted
    token = page.cookies["csrftoken"].value
    response = client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert response.status_code == 302


@pytest.mark.parametrize(
    "page", ["/admin/", "/admin/keys/apikey/", "/admin/routing/allowedmodel/", "/admin/admin/logentry/"]
)
def test_admin_pages_require_staff(page):
    user = get_user_model().objects.create_user("dev", "dev@example.com", PASSWORD)  # not staff
    client = Client()
    client.force_login(user)
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert log_in(client, PASSWORD, username="dev").status_code == 200  # the login form refuses non-staff too
