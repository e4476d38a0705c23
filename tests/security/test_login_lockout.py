"""The admin login lockout holds under parallel guesses and across addresses (issue 8, item 3)."""

import threading

import pytest
from django.contrib.auth.signals import user_login_failed
from django.db import connection
from django.test import Client

from tests.support.admin_users import PASSWORD, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

GUESSES = 20
WRONG_ANSWER = "Please enter the correct"
LOCKED_ANSWER = "Too many failed login attempts"


def log_in(client: Client, password: str, username: str = "ops"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


class PasswordChecks:
    """Counts the guesses that reached the password check, seen from outside: Django's user_login_failed signal."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, **kwargs) -> None:
        with self.lock:
            self.count += 1


@pytest.fixture
def password_checks():
    checks = PasswordChecks()
    user_login_failed.connect(checks, dispatch_uid="test-password-checks")
    yield checks
    user_login_failed.disconnect(dispatch_uid="test-password-checks")


def guess_in_parallel(guesses: int) -> list[str]:
    start = threading.Barrier(guesses)
    answers: list[str] = []

    def guess(number: int) -> None:
        client = Client()
        start.wait()
        try:
            answers.append(log_in(client, f"wrong-{number}").content.decode())
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(number,)) for number in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_parallel_wrong_guesses_reach_the_password_check_at_most_limit_times(settings, password_checks):
    settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES = 5
    staff_user("ops")
    answers = guess_in_parallel(GUESSES)
    assert len(answers) == GUESSES
    checked = sum(WRONG_ANSWER in answer for answer in answers)
    assert password_checks.count == checked
    assert 1 <= checked <= 5
    assert sum(LOCKED_ANSWER in answer for answer in answers) == GUESSES - checked
    assert LOCKED_ANSWER in log_in(Client(), PASSWORD).content.decode()  # and the right password is refused now


def test_rotating_addresses_hits_the_per_username_ceiling(settings, password_checks):
    settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES = 5
    settings.LLMPROXY_ADMIN_LOGIN_MAX_FAILURES_PER_USERNAME = 8
    staff_user("ops")
    for address in range(8):
        assert WRONG_ANSWER in log_in(Client(REMOTE_ADDR=f"10.0.0.{address}"), "wrong").content.decode()
    answer = log_in(Client(REMOTE_ADDR="10.0.1.1"), PASSWORD)
    assert answer.status_code == 200 and LOCKED_ANSWER in answer.content.decode()
    assert LOCKED_ANSWER in log_in(Client(REMOTE_ADDR="10.0.1.2"), "wrong-again").content.decode()
    assert password_checks.count == 8

    staff_user("someone-else")  # the ceiling is per username
    assert log_in(Client(REMOTE_ADDR="10.0.1.1"), PASSWORD, username="someone-else").status_code == 302
