"""A shipment's life: placed, backordered, shipped, delivered, installed, or cancelled (R13, R15).

Is: every step's write, one transaction each: the shipment's new status and times, a
`shipment_events` row with the time and the source of the step (the plan, the helpdesk, the
warehouse, the readings), and the email notice in the outbox (R15). Placing a shipment and its
request to the warehouse are collector.store.warehouse_requests (`placed`, `release`, kept
importable here).
A step the shipment cannot take from where it is raises InvalidTransition and changes nothing;
a step it has taken already changes nothing and says so (a warehouse may report twice).
Installed is read off the readings (R13): the shipments whose lines are all seen installed
(collector.store.installs) are installed. A cancelled shipment leaves its supplies' balances.
Is not: the decision to order (collector.replenish) or the sending (collector.fulfil).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from collector.errors import InvalidTransition, UnknownShipment
from collector.replenish.forecast import Track
from collector.store.database import Database
from collector.store.installs import installed_shipments
from collector.store.schema import (
    customers,
    notifications,
    orders,
    shipment_events,
    shipments,
    supply_tracks,
)
from collector.store.shipment_states import BACKORDERED as BACKORDERED
from collector.store.shipment_states import CANCELLED as CANCELLED
from collector.store.shipment_states import DELIVERED as DELIVERED
from collector.store.shipment_states import INSTALLED as INSTALLED
from collector.store.shipment_states import NEXT as NEXT
from collector.store.shipment_states import OPEN as OPEN
from collector.store.shipment_states import PART_NUMBER_NEEDED as PART_NUMBER_NEEDED
from collector.store.shipment_states import PLACED as PLACED
from collector.store.shipment_states import SHIPPED as SHIPPED
from collector.store.shipment_states import SOURCES as SOURCES
from collector.store.shipment_states import STATUSES as STATUSES
from collector.store.shipment_states import TIMES as TIMES
from collector.store.shipment_states import event_row
from collector.store.warehouse_requests import placed as placed
from collector.store.warehouse_requests import release as release


async def advance(
    db: Database,
    shipment_id: int,
    status: str,
    at: datetime,
    source: str,
    *,
    tracking: str | None = None,
    carrier: str | None = None,
    expected_at: datetime | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Move one shipment one step; False if it had taken that step already (nothing changes)."""
    if status not in STATUSES or status == PLACED:
        raise InvalidTransition(f"status {status!r}: one of {', '.join(STATUSES[1:])}")
    if source not in SOURCES:
        raise InvalidTransition(f"source {source!r}: one of {', '.join(SOURCES)}")
    step = Step(status, at, source, tracking, carrier, expected_at, detail or {})
    async with db.transaction() as conn:
        changed: bool = await conn.run_sync(
            lambda c: take(c, [shipment_id], step, now or at)[shipment_id]
        )
    return changed


@dataclass(frozen=True)
class Step:
    """A status a shipment moves to, when, on whose word, and what the warehouse said."""

    status: str
    at: datetime
    source: str
    tracking: str | None = None
    carrier: str | None = None
    expected_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def take(conn: Connection, ids: Sequence[int], step: Step, now: datetime) -> dict[int, bool]:
    """Shipments take one step in the caller's transaction; per id, whether it changed."""
    rows = conn.execute(
        select(
            shipments.c.id,
            shipments.c.customer_id,
            shipments.c.contact_id,
            shipments.c.status,
            shipments.c.delivered_at,
            customers.c.kind,
        )
        .join(customers, customers.c.id == shipments.c.customer_id)
        .where(shipments.c.id.in_(ids))
    ).all()
    found = {row.id: row for row in rows}
    missing = sorted(set(ids) - set(found))
    if missing:
        raise UnknownShipment(f"no shipment {missing[0]}")
    changed: dict[int, bool] = {}
    notices, events = [], []
    for shipment_id in ids:
        row = found[shipment_id]
        if row.status == step.status:
            changed[shipment_id] = False
            continue
        if row.status == INSTALLED and step.status == DELIVERED:
            # The carrier's scan came after the readings saw the cartridge in: keep the time.
            if row.delivered_at is None:
                conn.execute(
                    update(shipments)
                    .where(shipments.c.id == shipment_id)
                    .values(delivered_at=step.at)
                )
                events.append(event_row(shipment_id, DELIVERED, step.at, step.source, step.detail))
            changed[shipment_id] = False
            continue
        events.append(_move(conn, row, step))
        if step.status == CANCELLED:
            _leave_balances(conn, shipment_id, now)
        notice = _notice(row, step.status, now)
        if notice is not None:
            notices.append(notice)
        changed[shipment_id] = True
    if events:
        conn.execute(shipment_events.insert(), events)
    if notices:
        conn.execute(notifications.insert(), notices)
    return changed


def _move(conn: Connection, row: Any, step: Step) -> dict[str, Any]:
    """Move one shipment (a row of `take`'s) to the step's status if it may go there; the
    step's event row."""
    if step.status not in NEXT[row.status]:
        raise InvalidTransition(
            f"shipment {row.id} is {row.status}: it cannot become {step.status}"
            f" (from {row.status}: {', '.join(NEXT[row.status]) or 'nothing'})"
        )
    values: dict[str, Any] = {"status": step.status}
    if step.status in TIMES:
        values[TIMES[step.status]] = step.at
    if step.status == SHIPPED:
        values.update(tracking=step.tracking, carrier=step.carrier, expected_at=step.expected_at)
    conn.execute(update(shipments).where(shipments.c.id == row.id).values(values))
    detail = dict(step.detail)
    for key in ("tracking", "carrier"):
        if getattr(step, key) is not None:
            detail[key] = getattr(step, key)
    return event_row(row.id, step.status, step.at, step.source, detail)


def _notice(row: Any, after: str, now: datetime) -> dict[str, Any] | None:
    """The outbox row of the email a step sends, if it sends one (R15), to the contact or,
    for an MPS customer, to the helpdesk (R16)."""
    kind = _notice_kind(row.status, after)
    if kind is None:
        return None
    return {
        "kind": kind,
        "customer_id": row.customer_id,
        "contact_id": row.contact_id,
        "recipient": "helpdesk" if row.kind == "mps" else "contact",  # R16
        "created_at": now,
        "payload": {"shipment": row.id},
        "sent_at": None,
    }


def _notice_kind(before: str, after: str) -> str | None:
    """R15: a backorder email, a shipping email, and one when the backordered item ships."""
    if after == BACKORDERED:
        return "backordered"
    if after == SHIPPED:
        return "backorder_shipped" if before == BACKORDERED else "shipped"
    return None


def _leave_balances(conn: Connection, shipment_id: int, now: datetime) -> None:
    """A cancelled shipment's cartridges come off their supplies' balances (R13)."""
    lines = conn.execute(  # never counted: never in a balance (the plan skips them now)
        select(orders.c.serial, orders.c.supply_id, orders.c.quantity).where(
            orders.c.shipment_id == shipment_id, orders.c.counted_at.is_not(None)
        )
    ).all()
    for line in lines:
        row = conn.execute(
            select(supply_tracks.c.track).where(
                supply_tracks.c.serial == line.serial,
                supply_tracks.c.supply_id == line.supply_id,
            )
        ).first()
        if row is None:
            continue
        track = Track.from_json(row.track)
        balance = max(0, track.balance - line.quantity)
        moved = Track.from_json({**track.to_json(), "balance": balance})
        conn.execute(
            update(supply_tracks)
            .where(
                supply_tracks.c.serial == line.serial,
                supply_tracks.c.supply_id == line.supply_id,
            )
            .values(track=moved.to_json(), balance=balance, updated_at=now)
        )


def installed(
    conn: Connection, supplies: Iterable[tuple[str, str]], now: datetime, run_id: int
) -> list[int]:
    """R13: shipments whose every cartridge has been seen installed, judged for the supplies
    that had an install in this run; they become installed (source: the readings). Their ids."""
    keys = set(supplies)
    if not keys:
        return []
    ready = installed_shipments(conn, keys)
    if ready:
        take(conn, ready, Step(INSTALLED, now, "readings", detail={"plan_run": run_id}), now)
    return ready
