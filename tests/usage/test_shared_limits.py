"""Two gateway processes sharing one database (and, separately, one Redis) enforce one limit together."""

import pytest

from tests.usage.conftest import burst, two_gateways

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_two_processes_let_exactly_the_limit_through(subprocess_database_url, policy, backend):
    from keys.services import create_api_key

    key = create_api_key(name="shared", rpm_limit=9).plaintext
    with two_gateways(subprocess_database_url, backend) as servers:
        statuses = [response.status_code for response in burst(servers, [key], 30)]
    assert statuses.count(200) == 9, statuses
    assert statuses.count(429) == 21
