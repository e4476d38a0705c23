"""The policy version: one row whose token changes on every admin edit of keys, models or aliases.

A random token (not a counter) so that a wiped table (tests, restores) can never repeat an old value.
"""

import secrets

from llmproxy_site.dbthread import run_in_db_thread
from routing.models import PolicyVersion

VERSION_ROW_ID = 1


def bump_policy_version() -> str:
    token = secrets.token_hex(8)
    PolicyVersion.objects.update_or_create(pk=VERSION_ROW_ID, defaults={"token": token})
    return token


async def fetch_policy_version() -> str | None:
    return await run_in_db_thread(read_policy_version)


def read_policy_version() -> str | None:
    return PolicyVersion.objects.filter(pk=VERSION_ROW_ID).values_list("token", flat=True).first()
