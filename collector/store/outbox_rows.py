"""The rows of the collector's outboxes (emails, warehouse requests): all the SQL of
collector.outbox.

An outbox row has a key, `status` (pending, sending, then done or failed), `attempts`,
`claimed_at`, `next_attempt_at` and `last_error`. The claim and the put-back with its doubling
delay are collector.store.claims; this module adds the rest of a pass: the stale claims, the
due rows, and the mark of an answer. Each outbox is described once by an `OutboxTable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Row, select, update

from collector.store import claims
from collector.store.schema import fulfilment_requests, notifications

PENDING, SENDING, FAILED = claims.PENDING, claims.SENDING, "failed"


@dataclass(frozen=True)
class OutboxTable:
    """One outbox: its key column, and the statuses that differ between outboxes."""

    key: Column[Any]
    done: str  # what an accepted row becomes: "sent", "acked"
    # What a stale claim becomes: None, pending again (sent again, the far end being
    # idempotent); or a status of its own ("unconfirmed": never sent twice).
    given_up: str | None


NOTIFICATIONS = OutboxTable(notifications.c.id, "sent", "unconfirmed")
FULFILMENT_REQUESTS = OutboxTable(fulfilment_requests.c.shipment_id, "acked", None)


def recover(conn: Connection, box: OutboxTable, claimed_before: datetime, error: str) -> list[int]:
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


def due(conn: Connection, box: OutboxTable, now: datetime, limit: int) -> list[Row[Any]]:
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


def claim(conn: Connection, box: OutboxTable, row_id: int, now: datetime) -> bool:
    """Take the pending row `row_id` for sending; False if another worker took it first."""
    return claims.claim(conn, box.key, row_id, now)


def mark(
    conn: Connection,
    box: OutboxTable,
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


def put_back(
    conn: Connection,
    box: OutboxTable,
    claimed: Sequence[int],
    untried: Sequence[int],
    now: datetime,
    error: str,
    first_seconds: float,
    max_seconds: float,
) -> list[int]:
    """Back to pending with a doubling delay: the rows claimed, and those not tried (the far
    end was down), which count an attempt too. The ids put back."""
    return claims.put_back(conn, box.key, claimed, untried, now, error, first_seconds, max_seconds)
