"""The request log: rows are buffered in memory and written in batches, never on the request path.

A row is added with `record()` (no I/O). A background task flushes every `interval` seconds or as soon as
`batch_size` rows wait; `close()` (ASGI lifespan shutdown) flushes whatever is left. When the database is
unavailable the rows stay buffered and are retried, up to `max_buffered` rows; past that the oldest rows
are dropped and counted in `dropped` (and logged), so a long outage cannot exhaust memory.

A batch that left the buffer is in exactly one place until its write ends: the database or back in the buffer.
A write runs in a thread, where cancelling its caller cannot stop it; so nothing cancels a write: `close()` lets the
flusher finish the flush it is in, and a flush whose caller is cancelled still waits for (and handles) the outcome
of its write in the background, which `close()` also waits for.
"""

import asyncio
import contextlib
import contextvars
import logging
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from django.db import DataError, IntegrityError, transaction
from django.db.models import F

from llmproxy_site.dbthread import run_in_db_thread
from telemetry import metrics, tracing

logger = logging.getLogger(__name__)

T = TypeVar("T")
FINAL_WRITE_ATTEMPTS = 4


def write_rows(rows: list[dict[str, Any]]) -> None:
    """Insert the rows and fold them into the daily rollup, in one transaction.

    The rollup groups by the key's id and its team as well as its name: a renamed key keeps its history under its
    id, a new key given an old name starts its own, and a team's spend is the sum of its rows (a key that changes
    team leaves what it spent with the team it spent it for)."""
    from usage.models import DailyUsage, RequestLog

    rollup: dict[tuple, dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": Decimal(0)}
    )
    team_names: dict[int | None, str] = {}
    for row in rows:
        day = row["created_at"].date()
        endpoint = row.get("endpoint", "chat")  # a row that names none (an older caller) came through chat
        team_id = row.get("team_id")
        team_names[team_id] = row.get("team_name", "")
        totals = rollup[(day, row["api_key_id"], row["key_name"], team_id, row["resolved_model"], endpoint)]
        totals["requests"] += 1
        totals["errors"] += row["status"] >= 400
        totals["prompt_tokens"] += row["prompt_tokens"]
        totals["completion_tokens"] += row["completion_tokens"]
        totals["cost_usd"] += row["cost_usd"] or Decimal(0)
    with transaction.atomic():
        RequestLog.objects.bulk_create([RequestLog(**row) for row in rows])
        # One order for every writer: concurrent flushes (several workers, several hosts) lock the same rollup rows
        # in the same order, so they wait for each other instead of deadlocking (which fails a whole batch).
        for (day, key_id, key_name, team_id, model, endpoint), totals in sorted(rollup.items(), key=rollup_order):
            group = {"day": day, "api_key_id": key_id, "key_name": key_name, "team_id": team_id, "model": model,
                     "endpoint": endpoint}  # fmt: skip
            updated = DailyUsage.objects.filter(**group).update(
                **{name: F(name) + value for name, value in totals.items()}
            )
            if not updated:
                DailyUsage.objects.create(**group, team_name=team_names[team_id], **totals)


def rollup_order(item: tuple[tuple, dict]) -> tuple:
    day, key_id, key_name, team_id, model, endpoint = item[0]
    return day, key_id is None, key_id or 0, key_name, team_id is None, team_id or 0, model, endpoint


def write_each(rows: list[dict[str, Any]]) -> int:
    """Write rows one at a time after their batch was refused for its data: a row the database refuses is left out
    (and counted) instead of holding back every row after it. Returns how many were refused."""
    refused = 0
    for row in rows:
        try:
            write_rows([row])
        except (DataError, IntegrityError):
            refused += 1
    return refused


class UsageRecorder:
    def __init__(self, *, interval: float = 1.0, batch_size: int = 200, max_buffered: int = 100_000) -> None:
        self.interval = interval
        self.batch_size = batch_size
        self.max_buffered = max_buffered
        self.dropped = 0
        self.written = 0
        self._buffer: list[dict[str, Any]] = []
        self._writes: set[asyncio.Future] = set()  # writes whose flush was cancelled, still running in a thread
        self._flusher: asyncio.Task | None = None
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        self._drop_overflow()
        self._ensure_flusher()
        if len(self._buffer) >= self.batch_size and self._wake is not None:
            self._wake.set()

    def _drop_overflow(self) -> None:
        overflow = len(self._buffer) - self.max_buffered
        if overflow > 0:
            del self._buffer[:overflow]
            self.dropped += overflow
            metrics.usage_rows_dropped(overflow)
            logger.error("usage buffer full: dropped %s oldest request-log rows (database unavailable?)", overflow)

    def _ensure_flusher(self) -> None:
        loop = asyncio.get_running_loop()
        if self._flusher is not None and not self._flusher.done() and self._loop is loop:
            return
        self._loop = loop
        self._stopping = False
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        # A fresh context: started from a request, the flusher would otherwise carry its request id for good.
        self._flusher = loop.create_task(self._run(), name="usage-flusher", context=contextvars.Context())

    def _lock(self) -> asyncio.Lock:
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        return self._flush_lock

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            await self.flush()
            metrics.usage_buffered(len(self._buffer))  # what the flush left: rows wait while the database is down

    async def flush(self) -> int:
        """Write everything buffered; on failure keep the rows for the next try. Returns rows written."""
        async with self._lock():
            written = 0
            while self._buffer:
                batch = self._buffer[: self.batch_size * 5]
                del self._buffer[: len(batch)]
                if not await (self._write(batch) if not tracing.ENABLED else self._traced_write(batch)):
                    return written
                written += len(batch)
                self.written += len(batch)
                metrics.usage_rows_written(len(batch))
            return written

    async def _write(self, batch: list[dict[str, Any]]) -> bool:
        write = asyncio.ensure_future(run_in_db_thread(write_rows, batch))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            self._writes.add(write)
            write.add_done_callback(lambda done: self._after_cancelled_write(done, batch))
            raise
        except (DataError, IntegrityError):  # a row the database refuses: write the others one by one
            return await self._write_each(batch)
        except Exception as exc:
            self._keep(batch, exc)
            return False
        return True

    async def _traced_write(self, batch: list[dict[str, Any]]) -> bool:
        with tracing.span("llmproxy.usage_write", **{"llmproxy.rows": len(batch)}) as span:
            written = await self._write(batch)
            span.set_attribute("llmproxy.written", written)
            if not written:
                tracing.failed(span, "the rows stay buffered for the next try")
            return written

    async def _write_each(self, batch: list[dict[str, Any]]) -> bool:
        try:
            refused = await run_in_db_thread(write_each, batch)
        except Exception as exc:
            self._keep(batch, exc)
            return False
        if refused:
            self.dropped += refused
            metrics.usage_rows_dropped(refused)
            logger.error("the database refused %s request-log row(s) of a batch of %s: left out", refused, len(batch))
        return True

    def _after_cancelled_write(self, write: asyncio.Future, batch: list[dict[str, Any]]) -> None:
        self._writes.discard(write)
        if write.cancelled() or write.exception() is not None:
            self._keep(batch, write.exception() if not write.cancelled() else None)
        else:
            self.written += len(batch)
            metrics.usage_rows_written(len(batch))

    def _keep(self, batch: list[dict[str, Any]], exc: BaseException | None) -> None:
        self._buffer[:0] = batch  # keep them, oldest first, for the next try
        self._drop_overflow()  # rows recorded while this write was failing count against the bound
        problem = type(exc).__name__ if exc else "cancelled"
        logger.warning("could not write %s request-log rows (%s); will retry", len(batch), problem)

    async def _wait_for_cancelled_writes(self) -> None:
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def read_beside_buffer(self, read: Callable[..., T], **kwargs: Any) -> tuple[T, list[dict[str, Any]]]:
        """A database read and the rows not written yet, taken while no batch is being written: every row is in
        exactly one of the two."""
        async with self._lock():
            await self._wait_for_cancelled_writes()
            result = await run_in_db_thread(read, **kwargs)
            return result, list(self._buffer)

    async def close(self) -> None:
        """Stop the flusher after the flush it is in (never cancel a write), then write what is left."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            self._stopping = True
            self._wake.set()
            try:
                await flusher
            except Exception:  # the rows stay buffered: the flush below tries them again
                logger.exception("the usage flusher failed")
        await self._wait_for_cancelled_writes()
        for attempt in range(FINAL_WRITE_ATTEMPTS):  # the last chance for these rows: a transient failure (a
            await self.flush()  # deadlock with another host's flush, a dropped connection) gets a few more tries
            if not self._buffer:
                return
            await asyncio.sleep(0.2 * (attempt + 1))
        logger.error("could not write %s request-log rows before stopping: lost", len(self._buffer))
