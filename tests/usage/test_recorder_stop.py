"""A graceful stop loses no request-log row, even when it comes while a batch is being written."""

import asyncio
import threading
from contextlib import contextmanager

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)


def row(number: int) -> dict:
    return {"created_at": timezone.now(), "api_key_id": None, "key_name": "", "requested_model": f"m{number}",
            "resolved_model": "", "litellm_model": "", "streamed": False, "status": 200, "error_code": "",
            "end_reason": "completed", "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
            "usage_estimated": False, "cost_usd": None, "latency_ms": 1.0, "ttft_ms": None}  # fmt: skip


@contextmanager
def request_log_write_lock():
    """Hold a real database lock that blocks every write to the request log until the block ends, from a thread of
    its own (SQLite: a write transaction; PostgreSQL: a table lock)."""
    from django.db import connection, transaction

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():  # SQLite: BEGIN IMMEDIATE (settings), the database's write lock
                if connection.vendor == "postgresql":
                    connection.cursor().execute("LOCK TABLE usage_requestlog IN EXCLUSIVE MODE")
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold, name="lock-holder")
    holder.start()
    assert held.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join(10)


def test_close_while_a_batch_is_being_written_loses_nothing(transactional_db):
    from usage.models import RequestLog
    from usage.recorder import UsageRecorder

    with request_log_write_lock() as release:

        async def scenario() -> tuple[bool, int]:
            recorder = UsageRecorder(interval=3600, batch_size=2)
            for number in range(5):
                recorder.record(row(number))  # a full batch wakes the flusher, whose write waits for the lock
            while recorder.pending:  # the batch has left the buffer: its write is in progress
                await asyncio.sleep(0.01)
            closing = asyncio.create_task(recorder.close())  # the graceful stop comes now
            done, _ = await asyncio.wait({closing}, timeout=0.5)
            release.set()  # the write can go on
            await closing
            return bool(done), recorder.pending

        closed_before_the_write_ended, left_over = asyncio.run(scenario())
    assert not closed_before_the_write_ended
    assert left_over == 0
    assert sorted(RequestLog.objects.values_list("requested_model", flat=True)) == [f"m{n}" for n in range(5)]


def test_a_row_the_database_refuses_never_holds_back_the_others():
    from usage.models import RequestLog
    from usage.recorder import UsageRecorder

    recorder = UsageRecorder(interval=60, batch_size=10)

    async def scenario() -> None:
        recorder.record(row(1))
        recorder.record({**row(2), "key_name": None})  # NOT NULL: refused by SQLite and PostgreSQL alike
        recorder.record(row(3))
        await recorder.close()

    asyncio.run(scenario())
    assert sorted(RequestLog.objects.values_list("requested_model", flat=True)) == ["m1", "m3"]
    assert recorder.dropped == 1 and recorder.pending == 0
