"""Who is calling: async key lookup behind an in-process cache.

The cache is emptied whenever the policy version changes (any key, model or alias edit bumps it),
so a revoked key stops working on every worker as soon as that worker notices the new version.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from keys.hashing import hash_key, hashes_match, looks_like_key
from keys.models import ApiKey, parse_model_list
from llmproxy_site.dbthread import run_in_db_thread

logger = logging.getLogger(__name__)

MAX_CACHED_KEYS = 10_000


class InvalidApiKey(Exception):
    """The key is missing, malformed, unknown, revoked or expired; the message says which."""


@dataclass(frozen=True)
class KeyRecord:
    id: int
    name: str
    key_hash: str
    expires_at: datetime | None
    revoked: bool
    allowed_models: frozenset[str] | None  # None: no per-key allowlist
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_budget_usd: Decimal | None = None
    budget_period: str = "month"

    @property
    def has_limits(self) -> bool:
        return self.rpm_limit is not None or self.tpm_limit is not None or self.max_budget_usd is not None

    @classmethod
    def from_model(cls, api_key: ApiKey) -> "KeyRecord":
        names = parse_model_list(api_key.allowed_models)
        return cls(
            id=api_key.pk,
            name=api_key.name,
            key_hash=api_key.key_hash,
            expires_at=api_key.expires_at,
            revoked=api_key.revoked_at is not None,
            allowed_models=frozenset(names) if names else None,
            rpm_limit=api_key.rpm_limit,
            tpm_limit=api_key.tpm_limit,
            max_budget_usd=api_key.max_budget_usd,
            budget_period=api_key.budget_period,
        )


class KeyCache:
    def __init__(self, *, last_used_resolution: timedelta = timedelta(seconds=60)) -> None:
        self._records: dict[str, KeyRecord | None] = {}
        self._version: str | None = None
        self._last_used_written: dict[int, datetime] = {}
        self._last_used_resolution = last_used_resolution
        self._background: set[asyncio.Task] = set()

    def clear(self) -> None:
        self._records.clear()

    async def authenticate(self, token: str | None, *, version: str | None) -> KeyRecord:
        if not token:
            raise InvalidApiKey("Missing API key: send 'Authorization: Bearer llmp_…'.")
        if not looks_like_key(token):
            raise InvalidApiKey("Malformed API key: keys start with 'llmp_'.")
        if version != self._version:
            self._records.clear()
            self._version = version
        key_hash = hash_key(token)
        if key_hash in self._records:
            record = self._records[key_hash]
        else:
            record = await self._load(key_hash)
        if record is None or not hashes_match(record.key_hash, token):
            raise InvalidApiKey("Invalid API key.")
        now = timezone.now()
        if record.revoked:
            raise InvalidApiKey("This API key has been revoked.")
        if record.expires_at is not None and record.expires_at <= now:
            raise InvalidApiKey("This API key has expired.")
        self._note_last_used(record.id, now)
        return record

    async def _load(self, key_hash: str) -> KeyRecord | None:
        api_key = await run_in_db_thread(ApiKey.objects.filter(key_hash=key_hash).first)
        record = KeyRecord.from_model(api_key) if api_key else None
        if len(self._records) >= MAX_CACHED_KEYS:
            self._records.clear()
        self._records[key_hash] = record
        return record

    def _note_last_used(self, key_id: int, now: datetime) -> None:
        """Write last_used_at at most once per resolution window per key and worker, off the request."""
        previous = self._last_used_written.get(key_id)
        if previous is not None and now - previous < self._last_used_resolution:
            return
        self._last_used_written[key_id] = now
        task = asyncio.get_running_loop().create_task(self._write_last_used(key_id, now))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_last_used(self, key_id: int, now: datetime) -> None:
        try:
            await run_in_db_thread(ApiKey.objects.filter(pk=key_id).update, last_used_at=now)
        except Exception:  # a lost last-used stamp must never fail a request
            logger.warning("could not record last use of key id %s", key_id, exc_info=True)

    async def drain(self) -> None:
        """Wait for pending last-used writes (shutdown, tests)."""
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
