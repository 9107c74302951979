"""The helpdesk's queue: supplies that need a person (R3, R7, R15; issue 14).

Is: two lists and one change, the helpdesk's alone (anyone else is refused: Forbidden).
- *Part number needed*: registered supplies with no part number (neither the device nor the
  catalogue gave one, docs/catalogue.md), with the order lines waiting for it. Such a supply
  is still forecast and ordered; its shipment is not sent to the warehouse until every line
  has a part number.
- *Cannot be forecast*: supplies whose latest forecast says it has no usable evidence
  (`basis` "none": no level, no page counter), with the forecast's reason. A forecast
  without a `basis` is not listed.
- Setting a supply's part number: checked (a short token, never free text), written on the
  supply and on its order lines still without one, and the shipments that then have every
  number get their warehouse request (collector.store.shipping.release); audited.
Is not: HTTP (collector.portal.helpdesk_api, .helpdesk_pages) or the forecast itself.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from collector.catalogue import PART_NUMBER_RULE, is_part_number
from collector.errors import InvalidRequest
from collector.fulfilment import reference
from collector.portal.errors import Forbidden, NotFound
from collector.portal.inputs import MAX_SERIAL, MAX_SUPPLY_ID, is_plain
from collector.portal.models import CannotForecast, PartNumberNeeded
from collector.records import Principal
from collector.store import shipping
from collector.store.database import Database
from collector.store.people import audit
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    orders,
    shipments,
    sites,
    supply_tracks,
)

HELPDESK_ONLY = "the helpdesk's queue is shown to the helpdesk only"
NO_BASIS = "none"  # Forecast.figures()["basis"] when nothing can be forecast
WAITING = (shipping.PLACED, shipping.BACKORDERED)


def _helpdesk(principal: Principal) -> None:
    if not principal.is_helpdesk:
        raise Forbidden(HELPDESK_ONLY)


def clean_part_number(value: object) -> str:
    """A part number as the helpdesk types it: a short token, never a description."""
    text = value.strip() if isinstance(value, str) else ""
    if not is_part_number(text):
        raise InvalidRequest(f"part_number: {PART_NUMBER_RULE}", "part_number")
    return text


def _supplies_query() -> Any:
    return select(
        asr_supplies.c.serial,
        asr_supplies.c.supply_id,
        asr_supplies.c.kind,
        asr_supplies.c.colour,
        asr_devices.c.customer_id,
        sites.c.name.label("site_name"),
        asr_devices.c.model,
    ).select_from(
        asr_supplies.join(asr_devices, asr_devices.c.serial == asr_supplies.c.serial).join(
            sites, sites.c.id == asr_devices.c.site_id
        )
    )


def _where(row: Any) -> dict[str, Any]:
    """The supply, its device and where it is, from a `_supplies_query` row."""
    keys = ("serial", "supply_id", "kind", "colour", "customer_id", "site_name", "model")
    return {key: getattr(row, key) for key in keys}


def _needed(conn: Connection) -> list[PartNumberNeeded]:
    rows = conn.execute(
        _supplies_query()
        .where(asr_supplies.c.sku.is_(None))
        .order_by(asr_devices.c.customer_id, asr_supplies.c.serial, asr_supplies.c.supply_id)
    ).all()
    waiting: dict[tuple[str, str], list[int]] = defaultdict(list)
    for line in conn.execute(
        select(orders.c.serial, orders.c.supply_id, orders.c.shipment_id)
        .join(shipments, shipments.c.id == orders.c.shipment_id)
        .where(orders.c.sku.is_(None), shipments.c.status.in_(WAITING))
        .order_by(orders.c.shipment_id, orders.c.id)
    ):
        waiting[(line.serial, line.supply_id)].append(line.shipment_id)
    out = []
    for row in rows:
        ids = waiting[(row.serial, row.supply_id)]
        refs = tuple(reference(i) for i in dict.fromkeys(ids))
        out.append(PartNumberNeeded(**_where(row), waiting_lines=len(ids), waiting_shipments=refs))
    return out


def _blind(conn: Connection) -> list[CannotForecast]:
    basis = supply_tracks.c.forecast["basis"].as_string()
    why = supply_tracks.c.forecast["why"].as_string()
    query = (
        _supplies_query()
        .add_columns(why.label("why"), supply_tracks.c.updated_at)
        .join_from(
            asr_supplies,
            supply_tracks,
            (supply_tracks.c.serial == asr_supplies.c.serial)
            & (supply_tracks.c.supply_id == asr_supplies.c.supply_id),
        )
        .where(basis == NO_BASIS)
        .order_by(asr_devices.c.customer_id, asr_supplies.c.serial, asr_supplies.c.supply_id)
    )
    return [
        CannotForecast(
            **_where(row), why=row.why or "no usable evidence", updated_at=row.updated_at
        )
        for row in conn.execute(query)
    ]


async def part_numbers_needed(db: Database, principal: Principal) -> list[PartNumberNeeded]:
    """Registered supplies without a part number, and the order lines waiting for one."""
    _helpdesk(principal)
    return await db.read(_needed)


async def cannot_forecast(db: Database, principal: Principal) -> list[CannotForecast]:
    """Supplies with no usable evidence for a forecast, with the forecast's reason."""
    _helpdesk(principal)
    return await db.read(_blind)


async def set_part_number(
    db: Database,
    principal: Principal,
    serial: str,
    supply_id: str,
    part_number: object,
    now: datetime,
) -> list[int]:
    """The helpdesk gives a supply's part number; its waiting order lines take it, and the
    shipments that then have every number go to the warehouse. The shipments released."""
    _helpdesk(principal)
    number = clean_part_number(part_number)
    if not is_plain(serial) or not serial or len(serial) > MAX_SERIAL:
        raise NotFound("no such device", "serial")
    if not is_plain(supply_id) or not supply_id or len(supply_id) > MAX_SUPPLY_ID:
        raise NotFound("no such supply", "supply_id")

    def write(conn: Connection) -> list[int]:
        row = conn.execute(
            select(asr_supplies.c.sku, asr_devices.c.customer_id)
            .join(asr_devices, asr_devices.c.serial == asr_supplies.c.serial)
            .where(asr_supplies.c.serial == serial, asr_supplies.c.supply_id == supply_id)
        ).first()
        if row is None:
            raise NotFound("no such supply")
        key = (orders.c.serial == serial) & (orders.c.supply_id == supply_id)
        shipment_ids = list(
            conn.execute(
                select(orders.c.shipment_id).where(key, orders.c.sku.is_(None)).distinct()
            ).scalars()
        )
        conn.execute(
            update(asr_supplies)
            .where(asr_supplies.c.serial == serial, asr_supplies.c.supply_id == supply_id)
            .values(sku=number)
        )
        conn.execute(update(orders).where(key, orders.c.sku.is_(None)).values(sku=number))
        released = shipping.release(conn, shipment_ids, now)
        after = {"part_number": number, "shipments": shipment_ids, "released": released}
        audit(
            conn,
            now,
            principal,
            row.customer_id,
            "supply",
            f"{serial}/{supply_id}",
            "part-number-set",
            {"part_number": row.sku},
            after,
        )
        return released

    async with db.transaction() as conn:
        return await conn.run_sync(write)
