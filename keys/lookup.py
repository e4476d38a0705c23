"""Who is calling: async key lookup behind an in-process cache.

The cache is emptied whenever the policy version changes (any key, model or alias edit bumps it),
so a revoked key stops working on every worker as soon as that worker notices the new version. A record carries the
key's team (loaded with the key in one query), so a warm request for a key in a team makes no query either. A rotated
key is found by its new secret and, until the grace period ends, by its previous one (a record whose expiry is the
grace's end: it stops on time in a warm cache too).

Known keys and unknown tokens live apart: unknown tokens (random guesses, a deleted key an app keeps sending) sit in
their own bounded LRU, so a flood of them never evicts a real key, and the database lookups they cause run a few at
a time, with a bounded queue (past it the caller is asked to retry), so they cannot take the database's pool.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from keys.hashing import KEY_PREFIX, hash_key, hashes_match, looks_like_key
from keys.models import ApiKey, parse_model_list
from llmproxy_site.dbthread import run_in_db_thread
from teams.records import TeamRecord

__all__ = ["InvalidApiKey", "KeyCache", "KeyLookupsBusy", "KeyRecord", "TeamRecord", "fetch_key_record"]

logger = logging.getLogger(__name__)

MAX_KNOWN_KEYS = 100_000  # records of keys that exist (revoked and expired ones included)
MAX_UNKNOWN_TOKENS = 10_000  # hashes of tokens that match no key, least recently seen dropped first
LOOKUPS_IN_FLIGHT = 4  # database lookups of uncached tokens running at once, per process
LOOKUPS_WAITING = 256  # more uncached tokens waiting than this: answer "try again" instead of queueing


class InvalidApiKey(Exception):
    """The key is missing, malformed, unknown, revoked or expired; the message says which."""


class KeyLookupsBusy(Exception):
    """Too many tokens unknown to this process are waiting for a database lookup (HTTP 503, retry)."""


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
    team: TeamRecord | None = None
    alert_percent: int | None = None
    replaced: bool = False  # the secret was rotated out: valid until expires_at (the end of its grace period)

    @property
    def has_limits(self) -> bool:
        return self.rpm_limit is not None or self.tpm_limit is not None or self.max_budget_usd is not None

    @property
    def team_allowlist(self) -> frozenset[str] | None:
        return None if self.team is None else self.team.allowed_models

    @classmethod
    def from_model(cls, api_key: ApiKey, *, previous: bool = False) -> "KeyRecord":
        """The record for the key's current secret, or (`previous`) for the secret it replaced at its rotation."""
        names = parse_model_list(api_key.allowed_models)
        key_hash, expires_at = api_key.key_hash, api_key.expires_at
        if previous:
            key_hash = api_key.previous_key_hash or ""
            ends = [moment for moment in (api_key.previous_expires_at, expires_at) if moment is not None]
            expires_at = min(ends) if ends else None
        return cls(
            id=api_key.pk,
            name=api_key.name,
            key_hash=key_hash,
            expires_at=expires_at,
            revoked=api_key.revoked_at is not None,
            allowed_models=frozenset(names) if names else None,
            rpm_limit=api_key.rpm_limit,
            tpm_limit=api_key.tpm_limit,
            max_budget_usd=api_key.max_budget_usd,
            budget_period=api_key.budget_period,
            team=TeamRecord.from_model(api_key.team) if api_key.team is not None else None,
            alert_percent=api_key.alert_percent,
            replaced=previous,
        )


def fetch_key_record(key_hash: str) -> KeyRecord | None:
    """One query: the key whose current or previous (rotated-out) secret has this hash, with its team."""
    api_key = (
        ApiKey.objects.select_related("team")
        .filter(Q(key_hash=key_hash) | Q(previous_key_hash=key_hash))
        .order_by()
        .first()
    )
    if api_key is None:
        return None
    return KeyRecord.from_model(api_key, previous=api_key.key_hash != key_hash)


async def load_key_record(key_hash: str) -> KeyRecord | None:
    return await run_in_db_thread(fetch_key_record, key_hash)


class KeyCache:
    def __init__(
        self,
        *,
        last_used_resolution: timedelta = timedelta(seconds=60),
        loader: Callable[[str], Awaitable[KeyRecord | None]] = load_key_record,
        max_unknown: int = MAX_UNKNOWN_TOKENS,
    ) -> None:
        self._known: dict[str, KeyRecord] = {}
        self._unknown: OrderedDict[str, None] = OrderedDict()
        self._max_unknown = max_unknown
        self._loader = loader
        self._version: str | None = None
        self._generation = 0  # bumped by every clear: a lookup that started before one must not fill the cache
        self._lookups: asyncio.Semaphore | None = None
        self._waiting = 0
        self._last_used_written: dict[int, datetime] = {}
        self._last_used_resolution = last_used_resolution
        self._background: set[asyncio.Task] = set()
        self.lookups = 0  # database lookups made (tests, diagnostics)

    def clear(self) -> None:
        self._known.clear()
        self._unknown.clear()
        self._generation += 1

    async def authenticate(self, token: str | None, *, version: str | None) -> KeyRecord:
        if not token:
            raise InvalidApiKey("Missing API key: send 'Authorization: Bearer llmp_…'.")
        if not looks_like_key(token):
            if token.startswith(KEY_PREFIX):
                raise InvalidApiKey("Invalid API key.")
            raise InvalidApiKey("Malformed API key: keys start with 'llmp_'.")
        if version != self._version:
            self.clear()
            self._version = version
        key_hash = hash_key(token)
        record = self._known.get(key_hash)
        if record is None:
            if key_hash in self._unknown:
                self._unknown.move_to_end(key_hash)
                raise InvalidApiKey("Invalid API key.")
            record = await self._load(key_hash)
        if record is None or not hashes_match(record.key_hash, token):
            raise InvalidApiKey("Invalid API key.")
        now = timezone.now()
        if record.revoked:
            raise InvalidApiKey("This API key has been revoked.")
        if record.expires_at is not None and record.expires_at <= now:
            if record.replaced:
                raise InvalidApiKey("This API key was replaced by a new one and its grace period has ended.")
            raise InvalidApiKey("This API key has expired.")
        self._note_last_used(record.id, now)
        return record

    async def _load(self, key_hash: str) -> KeyRecord | None:
        if self._waiting >= LOOKUPS_WAITING:
            raise KeyLookupsBusy("Too many requests with keys this server has not seen yet; try again shortly.")
        if self._lookups is None:
            self._lookups = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)
        generation = self._generation
        self._waiting += 1
        try:
            async with self._lookups:
                self.lookups += 1
                record = await self._loader(key_hash)
        finally:
            self._waiting -= 1
        if generation == self._generation:  # else the policy changed during the read: the record may be stale
            self._remember(key_hash, record)
        return record

    def _remember(self, key_hash: str, record: KeyRecord | None) -> None:
        if record is None:
            self._unknown[key_hash] = None
            if len(self._unknown) > self._max_unknown:
                self._unknown.popitem(last=False)  # only other unknown tokens make way: known keys stay
            return
        if len(self._known) >= MAX_KNOWN_KEYS:
            self._known.pop(next(iter(self._known)))
        self._known[key_hash] = record

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
