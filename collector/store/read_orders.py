"""Orders as the portal reads them (R15): shipments with their lines and events.

Is: the shipments a principal sees, newest first, each with its latest state, order lines
and events (R17: another customer's are simply not there). Is not: a writer
(collector.store.shipping), or the filters' validation (collector.portal.queries).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, and_, select

from collector.fulfilment import reference
from collector.records import Principal
from collector.store.database import Database
from collector.store.read_records import (
    OrderLine,
    ShipmentEvent,
    ShipmentView,
    chunks,
    scoped,
)
from collector.store.schema import orders as order_lines
from collector.store.schema import shipment_events, shipments
from collector.store.schema import sites as site_rows

OPEN_STATUSES = ("placed", "backordered", "shipped")
STATUSES = ("placed", "backordered", "shipped", "delivered", "installed", "cancelled")


def device_shipments(serial: str) -> ColumnElement[bool]:
    """The shipments with a line for the device."""
    return shipments.c.id.in_(
        select(order_lines.c.shipment_id).where(order_lines.c.serial == serial)
    )


def shipment_views(
    conn: Connection, where: ColumnElement[bool], limit: int | None = None
) -> list[ShipmentView]:
    """The shipments `where` selects, newest first, with their lines and events."""
    query = (
        select(shipments, site_rows.c.name.label("site_name"))
        .join(site_rows, site_rows.c.id == shipments.c.site_id)
        .where(where)
        .order_by(shipments.c.placed_at.desc(), shipments.c.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = list(conn.execute(query))
    ids = [row.id for row in rows]
    lines: dict[int, list[OrderLine]] = defaultdict(list)
    events: dict[int, list[ShipmentEvent]] = defaultdict(list)
    for chunk in chunks(ids, 500):
        for o in conn.execute(
            select(order_lines)
            .where(order_lines.c.shipment_id.in_(chunk))
            .order_by(order_lines.c.id)
        ):
            lines[o.shipment_id].append(
                OrderLine(o.serial, o.supply_id, o.sku, o.quantity, o.reason)
            )
        for e in conn.execute(
            select(shipment_events)
            .where(shipment_events.c.shipment_id.in_(chunk))
            .order_by(shipment_events.c.at, shipment_events.c.id)
        ):
            events[e.shipment_id].append(ShipmentEvent(e.status, e.at, e.source, dict(e.detail)))
    return [
        ShipmentView(
            id=row.id,
            reference=reference(row.id),
            customer_id=row.customer_id,
            site_id=row.site_id,
            site_name=row.site_name,
            status=row.status,
            placed_at=row.placed_at,
            shipped_at=row.shipped_at,
            delivered_at=row.delivered_at,
            installed_at=row.installed_at,
            cancelled_at=row.cancelled_at,
            expected_at=row.expected_at,
            tracking=row.tracking,
            carrier=row.carrier,
            address=row.address,
            placed_by="plan" if row.plan_run_id is not None else "helpdesk",
            lines=tuple(lines[row.id]),
            events=tuple(events[row.id]),
        )
        for row in rows
    ]


async def orders(
    db: Database,
    principal: Principal,
    statuses: Sequence[str] | None = None,
    *,
    serial: str | None = None,
    limit: int = 500,
) -> list[ShipmentView]:
    """The shipments the principal sees in `statuses` (None: all), newest first."""
    where = scoped(principal, shipments.c.customer_id)
    if statuses is not None:
        where = and_(where, shipments.c.status.in_(tuple(statuses)))
    if serial is not None:
        where = and_(where, device_shipments(serial))
    return await db.read(lambda c: shipment_views(c, where, limit))


async def order(db: Database, principal: Principal, shipment_id: int) -> ShipmentView | None:
    """One shipment the principal sees; None otherwise."""
    where = and_(scoped(principal, shipments.c.customer_id), shipments.c.id == shipment_id)
    found = await db.read(lambda c: shipment_views(c, where, 1))
    return found[0] if found else None
