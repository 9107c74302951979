"""A placed shipment's request to the warehouse, in the fulfilment outbox (R3, R15, R18).

Is: a new shipment's first event, with the site's address of that moment (R18) on the
shipment, and its request to the warehouse (collector.fulfil.outbound sends it), naming each
line's device (R3). A shipment with a line whose part number is not known yet ("part number
needed") waits: its request is made when the helpdesk gives the last number (`release`), so a
warehouse never gets a line without a real part number.
Is not: the steps after placing (collector.store.shipping), or the sending (collector.fulfil).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from collector.fulfilment import Line, Request
from collector.store.schema import (
    contacts,
    customers,
    fulfilment_requests,
    orders,
    shipment_events,
    shipments,
    sites,
)
from collector.store.shipment_states import BACKORDERED, PART_NUMBER_NEEDED, PLACED, event_row


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
        events.append(event_row(shipment_id, PLACED, now, source, detail))
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
