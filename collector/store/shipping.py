"""A shipment's life: placed, backordered, shipped, delivered, installed, or cancelled (R13, R15).

Is: every step's write, one transaction each: the shipment's new status and times, a
`shipment_events` row with the time and the source of the step (the plan, the helpdesk, the
warehouse, the readings), the email notice in the outbox (R15), and, when a shipment is
placed, its request to the warehouse in the fulfilment outbox (collector.fulfil.outbound) with
the site's address of that moment (R3, R18). A shipment with a line whose part number is not
known yet ("part number needed") waits: its request is made when the helpdesk gives the last
number (`release`), so a warehouse never gets a line without a real part number.
A step the shipment cannot take from where it is raises InvalidTransition and changes nothing;
a step it has taken already changes nothing and says so (a warehouse may report twice).
Installed is read off the readings (R13): each install the daily run detects is given, oldest
first, to the oldest shipped line of that supply still waiting for one; a shipment whose lines
are all installed is installed (a line of a supply that never reports a number, which no
reading can show replaced, does not hold it back). A cancelled shipment leaves its supplies'
balances.
Is not: the decision to order (collector.replenish) or the sending (collector.fulfil).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from collector.errors import InvalidTransition, UnknownShipment
from collector.fulfilment import Line, Request
from collector.replenish.forecast import Track
from collector.store.database import Database
from collector.store.schema import (
    contacts,
    customers,
    fulfilment_requests,
    notifications,
    orders,
    shipment_events,
    shipments,
    sites,
    supply_events,
    supply_tracks,
)

PLACED, BACKORDERED, SHIPPED, DELIVERED = "placed", "backordered", "shipped", "delivered"
INSTALLED, CANCELLED = "installed", "cancelled"
STATUSES = (PLACED, BACKORDERED, SHIPPED, DELIVERED, INSTALLED, CANCELLED)
OPEN = (PLACED, BACKORDERED, SHIPPED)  # on their way: in the device's "toner ordered" state
SOURCES = ("plan", "helpdesk", "warehouse", "readings", "customer")
PART_NUMBER_NEEDED = "part number needed"  # a line without one: the shipment waits

# Where a shipment may go from each status.
NEXT: dict[str, tuple[str, ...]] = {
    PLACED: (BACKORDERED, SHIPPED, CANCELLED),
    BACKORDERED: (SHIPPED, CANCELLED),
    SHIPPED: (DELIVERED, INSTALLED),
    DELIVERED: (INSTALLED,),
    INSTALLED: (),
    CANCELLED: (),
}
TIMES = {
    SHIPPED: "shipped_at",
    DELIVERED: "delivered_at",
    INSTALLED: "installed_at",
    CANCELLED: "cancelled_at",
}


def placed(conn: Connection, shipment_ids: Sequence[int], now: datetime, source: str) -> None:
    """New shipments' first event and their requests to the warehouse, in the caller's
    transaction; each takes its site's address of now (R18) and names its devices (R3).

    A shipment with a line that has no part number yet waits: its event says "part number
    needed" and no request is made until the helpdesk gives every number (`release`)."""
    if not shipment_ids:
        return
    conn.execute(  # the label's address: the site's now, kept whatever the site becomes
        update(shipments)
        .where(shipments.c.id.in_(shipment_ids))
        .values(
            address=select(sites.c.address)
            .where(sites.c.id == shipments.c.site_id)
            .scalar_subquery()
        )
    )
    lines = _lines(conn, shipment_ids)
    waiting = {i for i in shipment_ids if any(line.sku is None for line in lines[i])}
    events = []
    for shipment_id in sorted(shipment_ids):
        detail: dict[str, Any] = {"lines": len(lines[shipment_id])}
        if shipment_id in waiting:
            detail["waiting"] = PART_NUMBER_NEEDED
        events.append(_event(shipment_id, PLACED, now, source, detail))
    _request(conn, [i for i in shipment_ids if i not in waiting], lines, now)
    conn.execute(shipment_events.insert(), events)


def release(conn: Connection, shipment_ids: Iterable[int], now: datetime) -> list[int]:
    """Waiting shipments whose every line now has a part number get their warehouse request
    (a description is never sent as one); the ids released. Cancelled or already requested
    shipments are left alone."""
    ids = sorted(set(shipment_ids))
    if not ids:
        return []
    requested = set(
        conn.execute(
            select(fulfilment_requests.c.shipment_id).where(
                fulfilment_requests.c.shipment_id.in_(ids)
            )
        ).scalars()
    )
    open_ = set(
        conn.execute(
            select(shipments.c.id).where(
                shipments.c.id.in_(ids), shipments.c.status.in_((PLACED, BACKORDERED))
            )
        ).scalars()
    )
    candidates = [i for i in ids if i in open_ and i not in requested]
    lines = _lines(conn, candidates)
    ready = [i for i in candidates if lines[i] and all(line.sku for line in lines[i])]
    _request(conn, ready, lines, now)
    return ready


def _lines(conn: Connection, shipment_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Each shipment's order lines (rows: serial, supply_id, sku, quantity, reason)."""
    lines: dict[int, list[Any]] = defaultdict(list)
    for row in conn.execute(
        select(
            orders.c.shipment_id,
            orders.c.serial,
            orders.c.supply_id,
            orders.c.sku,
            orders.c.quantity,
            orders.c.reason,
        )
        .where(orders.c.shipment_id.in_(shipment_ids))
        .order_by(orders.c.id)
    ):
        lines[row.shipment_id].append(row)
    return lines


def _request(
    conn: Connection, shipment_ids: Sequence[int], lines: dict[int, list[Any]], now: datetime
) -> None:
    """The warehouse requests of shipments whose lines all have part numbers (R3, R15)."""
    if not shipment_ids:
        return
    heads = conn.execute(
        select(
            shipments.c.id,
            shipments.c.placed_at,
            shipments.c.customer_id,
            customers.c.name.label("customer_name"),
            sites.c.name.label("site"),
            shipments.c.address,
            contacts.c.display_name,
            contacts.c.email,
        )
        .join(customers, customers.c.id == shipments.c.customer_id)
        .join(sites, sites.c.id == shipments.c.site_id)
        .join(contacts, contacts.c.id == shipments.c.contact_id)
        .where(shipments.c.id.in_(shipment_ids))
        .order_by(shipments.c.id)
    ).all()
    requests = []
    for head in heads:
        if any(not line.sku for line in lines[head.id]):  # never a request without one
            raise ValueError(f"shipment {head.id}: a line has no part number")
        request = Request(
            shipment_id=head.id,
            placed_at=head.placed_at,
            customer_id=head.customer_id,
            customer_name=head.customer_name,
            site=head.site,
            address=head.address,
            contact_name=head.display_name,
            contact_email=head.email,
            lines=tuple(
                Line(row.serial, row.supply_id, row.sku, row.quantity, row.reason)
                for row in lines[head.id]
            ),
        )
        requests.append(
            {
                "shipment_id": head.id,
                "created_at": now,
                "body": request.encode(),
                "status": "pending",
            }
        )
    if requests:
        conn.execute(fulfilment_requests.insert(), requests)


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
                events.append(_event(shipment_id, DELIVERED, step.at, step.source, step.detail))
            changed[shipment_id] = False
            continue
        if step.status not in NEXT[row.status]:
            raise InvalidTransition(
                f"shipment {shipment_id} is {row.status}: it cannot become {step.status}"
                f" (from {row.status}: {', '.join(NEXT[row.status]) or 'nothing'})"
            )
        values: dict[str, Any] = {"status": step.status}
        if step.status in TIMES:
            values[TIMES[step.status]] = step.at
        if step.status == SHIPPED:
            values.update(
                tracking=step.tracking, carrier=step.carrier, expected_at=step.expected_at
            )
        conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(values))
        detail = dict(step.detail)
        for key in ("tracking", "carrier"):
            if getattr(step, key) is not None:
                detail[key] = getattr(step, key)
        events.append(_event(shipment_id, step.status, step.at, step.source, detail))
        if step.status == CANCELLED:
            _leave_balances(conn, shipment_id, now)
        kind = _notice_kind(row.status, step.status)
        if kind is not None:
            notices.append(
                {
                    "kind": kind,
                    "customer_id": row.customer_id,
                    "contact_id": row.contact_id,
                    "recipient": "helpdesk" if row.kind == "mps" else "contact",  # R16
                    "created_at": now,
                    "payload": {"shipment": shipment_id},
                    "sent_at": None,
                }
            )
        changed[shipment_id] = True
    if events:
        conn.execute(shipment_events.insert(), events)
    if notices:
        conn.execute(notifications.insert(), notices)
    return changed


def _notice_kind(before: str, after: str) -> str | None:
    """R15: a backorder email, a shipping email, and one when the backordered item ships."""
    if after == BACKORDERED:
        return "backordered"
    if after == SHIPPED:
        return "backorder_shipped" if before == BACKORDERED else "shipped"
    return None


def _event(
    shipment_id: int, status: str, at: datetime, source: str, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "shipment_id": shipment_id,
        "status": status,
        "at": at,
        "source": source,
        "detail": detail,
    }


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
    # The shipments waiting for one of these supplies; a consolidated one (R10) also holds
    # other devices' lines, and all of them must be seen installed, so its every device's
    # lines (the older ones too: installs go to the oldest line first) are judged.
    touched = sorted({serial for serial, _ in keys})
    candidates = {
        row.shipment_id
        for row in conn.execute(
            select(orders.c.shipment_id, orders.c.serial, orders.c.supply_id)
            .join(shipments, shipments.c.id == orders.c.shipment_id)
            .where(orders.c.serial.in_(touched), shipments.c.status.in_((SHIPPED, DELIVERED)))
        )
        if (row.serial, row.supply_id) in keys
    }
    if not candidates:
        return []
    serials = sorted(
        conn.execute(
            select(orders.c.serial).where(orders.c.shipment_id.in_(candidates)).distinct()
        ).scalars()
    )
    line_rows = conn.execute(
        select(
            orders.c.shipment_id,
            orders.c.serial,
            orders.c.supply_id,
            orders.c.quantity,
            shipments.c.status,
            shipments.c.placed_at,
            shipments.c.shipped_at,
        )
        .join(shipments, shipments.c.id == orders.c.shipment_id)
        .where(orders.c.serial.in_(serials), shipments.c.status != CANCELLED)
        .order_by(shipments.c.placed_at, shipments.c.id, orders.c.id)
    ).all()
    judged = {(row.serial, row.supply_id) for row in line_rows if row.shipment_id in candidates}
    installs: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for event in conn.execute(
        select(supply_events.c.serial, supply_events.c.supply_id, supply_events.c.at)
        .where(supply_events.c.serial.in_(serials))
        .order_by(supply_events.c.at, supply_events.c.id)
    ):
        installs[(event.serial, event.supply_id)].append(event.at)
    # A supply that never reported a number (a waste box saying only "some remaining") cannot
    # be seen replaced: its lines do not hold their shipment back.
    blind = {
        (serial, supply_id)
        for serial, supply_id, track in conn.execute(
            select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.track).where(
                supply_tracks.c.serial.in_(serials)
            )
        )
        if (serial, supply_id) in judged and track.get("last_value") is None
    }
    need: dict[int, int] = defaultdict(int)  # each shipment's cartridges not seen installed
    waiting: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
    for row in line_rows:
        key = (row.serial, row.supply_id)
        if key not in judged or key in blind or row.status not in (SHIPPED, DELIVERED, INSTALLED):
            continue
        need[row.shipment_id] += row.quantity
        # [shipment, cartridges not yet seen installed, when they can first be]
        waiting[key].append([row.shipment_id, row.quantity, row.shipped_at or row.placed_at])
    for key, lines in waiting.items():
        for at in installs[key]:
            for line in lines:  # the oldest line still waiting and out of the warehouse by then
                if line[1] > 0 and line[2] <= at:
                    line[1] -= 1
                    need[line[0]] -= 1
                    break
    ready = sorted(shipment_id for shipment_id in candidates if need[shipment_id] <= 0)
    if ready:
        take(conn, ready, Step(INSTALLED, now, "readings", detail={"plan_run": run_id}), now)
    return ready
