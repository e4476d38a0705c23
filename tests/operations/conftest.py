from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.conftest import database_url_for_subprocess
from tests.operations.cluster import Cluster, require_binary
from tests.operations.hosts import HostNetwork
from tests.support.fake_control import FakeProviderProcess
from tests.usage.conftest import redis_url


@pytest.fixture
def postgres_only(transactional_db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("several hosts and PgBouncer share one PostgreSQL (CI runs these on PostgreSQL)")


@pytest.fixture
def cluster(postgres_only) -> Iterator[Cluster]:
    """Three hosts behind haproxy, one PostgreSQL, one Redis, one fake provider (a process of its own). The test
    creates its policy, then calls `cluster.start_gateways()`."""
    require_binary("haproxy")
    urls = (database_url_for_subprocess(), redis_url())  # redis_url(): skipped (failed in CI) without Redis
    provider = FakeProviderProcess().start()
    network = HostNetwork(3)
    result = Cluster(network, provider)
    try:
        network.start([f"{parts.hostname}:{parts.port}" for parts in map(urlsplit, (*urls, provider.url))])
        yield result
    finally:
        result.stop()
