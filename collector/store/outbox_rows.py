"""The rows of the collector's outboxes (emails, warehouse requests): all the SQL of
collector.outbox.

An outbox row has a key, `status` (pending, sending, then done or failed), `attempts`,
`claimed_at`, `next_attempt_at` and `last_error`. A worker claims one pending row at a time
with a conditional UPDATE, so two workers never take the same row; a row it could not send goes
back to pending with a doubling delay; a claim never marked is recovered as its outbox says.
Each outbox is described once by an `OutboxTable`, and handled through an `OutboxStore`, whose
every call is one transaction and whose due rows come up as records (`Notification`,
`FulfilmentRequest`). Also the outboxes' depths, for the metrics.
Is not: what a row means or how it is sent (collector.outbox and its senders).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Connection, Row, func, select, update

from collector.store.database import Database
from collector.store.schema import fulfilment_requests, notifications

PENDING, SENDING, FAILED = "pending", "sending", "failed"
RecordT = TypeVar("RecordT")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Notification:
    """A row of the notifications outbox: what to tell whom (collector.notify composes it)."""

    id: int
    kind: str
    customer_id: str
    contact_id: int | None
    recipient: str  # "contact", or "helpdesk" for an MPS customer (R16)
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class FulfilmentRequest:
    """A row of the fulfilment outbox: a shipment's request, its exact body fixed when placed."""

    shipment_id: int
    body: bytes


def _notification(row: Row[Any]) -> Notification:
    return Notification(
        int(row.id), row.kind, row.customer_id, row.contact_id, row.recipient, row.payload or {}
    )


def _fulfilment_request(row: Row[Any]) -> FulfilmentRequest:
    return FulfilmentRequest(int(row.shipment_id), bytes(row.body))


@dataclass(frozen=True)
class OutboxTable(Generic[RecordT]):
    """One outbox: its key column, the statuses that differ between outboxes, its record."""

    key: Column[Any]
    done: str  # what an accepted row becomes: "sent", "acked"
    # What a stale claim becomes: None, pending again (sent again, the far end being
    # idempotent); or a status of its own ("unconfirmed": never sent twice).
    given_up: str | None
    record: Callable[[Row[Any]], RecordT]


NOTIFICATIONS = OutboxTable(notifications.c.id, "sent", "unconfirmed", _notification)
FULFILMENT_REQUESTS = OutboxTable(
    fulfilment_requests.c.shipment_id, "acked", None, _fulfilment_request
)


class OutboxStore(Generic[RecordT]):
    """One outbox of one database: each call below is one transaction of its own."""

    def __init__(self, db: Database, box: OutboxTable[RecordT]) -> None:
        self.db = db
        self.box = box

    async def recover(self, claimed_before: datetime, error: str) -> list[int]:
        """The rows claimed before `claimed_before` and never marked, made pending again (due
        at once) or given up, as the outbox says. Their ids."""
        return await self._run(
            partial(recover, box=self.box, claimed_before=claimed_before, error=error)
        )

    async def due(self, now: datetime, limit: int) -> list[tuple[int, RecordT]]:
        """Up to `limit` pending rows due at `now`, oldest key first: (id, record)."""
        box = self.box
        found = await self._run(partial(due, box=box, now=now, limit=limit))
        return [(int(getattr(row, box.key.name)), box.record(row)) for row in found]

    async def claim(self, row_id: int, now: datetime) -> bool:
        """Take the pending row `row_id` for sending; False if another worker took it first."""
        return await self._run(partial(claim, box=self.box, row_id=row_id, now=now))

    async def mark(
        self,
        row_id: int,
        status: str,
        error: str | None = None,
        values: Mapping[str, Any] | None = None,
        claimed: bool = True,
    ) -> None:
        """Record an answer (see `mark`)."""
        await self._run(
            partial(
                mark,
                box=self.box,
                row_id=row_id,
                status=status,
                error=error,
                values=values,
                claimed=claimed,
            )
        )

    async def put_back(
        self,
        claimed: Sequence[int],
        untried: Sequence[int],
        now: datetime,
        error: str,
        first_seconds: float,
        max_seconds: float,
    ) -> list[int]:
        """Back to pending with a doubling delay (see `put_back`). The ids put back."""
        back = partial(
            put_back,
            box=self.box,
            claimed=claimed,
            untried=untried,
            now=now,
            error=error,
            first_seconds=first_seconds,
            max_seconds=max_seconds,
        )
        return await self._run(back)

    async def _run(self, work: Callable[[Connection], _T]) -> _T:
        async with self.db.transaction() as conn:
            return await conn.run_sync(work)


def recover(
    conn: Connection, box: OutboxTable[Any], claimed_before: datetime, error: str
) -> list[int]:
    """The rows claimed before `claimed_before` and never marked, made pending again (due at
    once) or given up, as the outbox says. Their ids."""
    table = box.key.table
    values: dict[str, Any] = {"last_error": error}
    if box.given_up is None:
        values.update(status=PENDING, claimed_at=None, next_attempt_at=None)
    else:
        values.update(status=box.given_up)
    return list(
        conn.execute(
            update(table)
            .where((table.c.status == SENDING) & (table.c.claimed_at < claimed_before))
            .values(values)
            .returning(box.key)
        ).scalars()
    )


def due(conn: Connection, box: OutboxTable[Any], now: datetime, limit: int) -> list[Row[Any]]:
    """Up to `limit` pending rows due at `now`, oldest key first."""
    table = box.key.table
    return list(
        conn.execute(
            select(table)
            .where(
                (table.c.status == PENDING)
                & (table.c.next_attempt_at.is_(None) | (table.c.next_attempt_at <= now))
            )
            .order_by(box.key)
            .limit(limit)
        )
    )


def claim(conn: Connection, box: OutboxTable[Any], row_id: int, now: datetime) -> bool:
    """Take the pending row `row_id` for sending; False if another worker took it first."""
    key = box.key
    table = key.table
    taken = conn.execute(
        update(table)
        .where((key == row_id) & (table.c.status == PENDING))
        .values(status=SENDING, claimed_at=now, attempts=table.c.attempts + 1)
    )
    return taken.rowcount == 1


def mark(
    conn: Connection,
    box: OutboxTable[Any],
    row_id: int,
    status: str,
    error: str | None = None,
    values: Mapping[str, Any] | None = None,
    claimed: bool = True,
) -> None:
    """Record an answer: `status` with `last_error` and the outbox's own `values`, if the row
    is still this worker's (`sending`; `pending` for a row refused before its claim)."""
    table = box.key.table
    taken = SENDING if claimed else PENDING
    conn.execute(
        update(table)
        .where((box.key == row_id) & (table.c.status == taken))
        .values({"status": status, "claimed_at": None, "last_error": error, **(values or {})})
    )


def backoff(attempts: int, first_seconds: float, max_seconds: float) -> float:
    """Seconds to wait after `attempts` failed attempts: first, doubling, capped."""
    return float(min(first_seconds * 2 ** max(0, attempts - 1), max_seconds))


def put_back(
    conn: Connection,
    box: OutboxTable[Any],
    claimed: Sequence[int],
    untried: Sequence[int],
    now: datetime,
    error: str,
    first_seconds: float,
    max_seconds: float,
) -> list[int]:
    """Back to pending for a later attempt: the rows this pass claimed, and those it did not
    get to (the far end was down), which count an attempt too. The ids put back."""
    key = box.key
    table = key.table
    rows = conn.execute(
        select(key, table.c.attempts, table.c.status)
        .where(key.in_([*claimed, *untried]))
        .order_by(key)
    ).all()
    done = []
    for row_id, attempts, status in rows:
        if status != (SENDING if row_id in claimed else PENDING):
            continue  # another worker has it
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
