"""The claim and the put-back shared by the collector's outboxes (emails, warehouse requests).

An outbox row has `status` (pending, sending, ...), `attempts`, `claimed_at`,
`next_attempt_at` and `last_error`. A sender claims one pending row at a time with a
conditional UPDATE, so two senders never take the same row; a row it could not send goes back
to pending with a doubling delay. What a stale claim means differs per outbox, and stays there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, func, select, update

from collector.store.database import Database
from collector.store.schema import fulfilment_requests, notifications

PENDING, SENDING = "pending", "sending"


def claim(conn: Connection, key: Column[Any], row_id: int, now: datetime) -> bool:
    """Take the pending row `row_id` (by its key column) for sending; False if taken first."""
    table = key.table
    taken = conn.execute(
        update(table)
        .where((key == row_id) & (table.c.status == PENDING))
        .values(status=SENDING, claimed_at=now, attempts=table.c.attempts + 1)
    )
    return taken.rowcount == 1


def backoff(attempts: int, first_seconds: float, max_seconds: float) -> float:
    """Seconds to wait after `attempts` failed attempts: first, doubling, capped."""
    return float(min(first_seconds * 2 ** max(0, attempts - 1), max_seconds))


def put_back(
    conn: Connection,
    key: Column[Any],
    claimed: Sequence[int],
    untried: Sequence[int],
    now: datetime,
    error: str,
    first_seconds: float,
    max_seconds: float,
) -> list[int]:
    """Back to pending for a later attempt: the rows this pass claimed, and those it did not
    get to (the far end was down), which count an attempt too. The ids put back."""
    table = key.table
    rows = conn.execute(
        select(key, table.c.attempts, table.c.status)
        .where(key.in_([*claimed, *untried]))
        .order_by(key)
    ).all()
    done = []
    for row_id, attempts, status in rows:
        if status != (SENDING if row_id in claimed else PENDING):
            continue  # another sender has it
        attempts += row_id not in claimed
        delay = backoff(attempts, first_seconds, max_seconds)
        conn.execute(
            update(table)
            .where(key == row_id)
            .values(
                status=PENDING,
                attempts=attempts,
                claimed_at=None,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=error[:500],
            )
        )
        done.append(row_id)
    return done


async def depths(db: Database) -> dict[str, dict[str, int]]:
    """Rows per status of each outbox: {"notifications": {"pending": 3, ...}, ...}."""

    def read(conn: Connection) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for table in (notifications, fulfilment_requests):
            rows = conn.execute(select(table.c.status, func.count()).group_by(table.c.status))
            found[table.name] = {status: int(count) for status, count in rows}
        return found

    return await db.read(read)
