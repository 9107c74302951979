"""The helpdesk's queue as read: supplies that need a person (R3, R7, R15; issue 14).

Is: two lists of registered supplies, each with its device and where it is.
- *Part number needed*: supplies with no part number (neither the device nor the catalogue
  gave one, docs/catalogue.md), with the order lines waiting for it in shipments not yet sent.
- *Cannot be forecast*: supplies whose latest forecast says it has no usable evidence
  (`basis` "none": no level, no page counter), with the forecast's reason. A forecast
  without a `basis` is not listed.
Is not: who may read them (collector.portal.helpdesk), or the part number's change
(collector.store.write_changes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from collector.fulfilment import reference
from collector.store import shipping
from collector.store.database import Database
from collector.store.read_records import Record
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    orders,
    shipments,
    sites,
    supply_tracks,
)

NO_BASIS = "none"  # Forecast.figures()["basis"] when nothing can be forecast
WAITING = (shipping.PLACED, shipping.BACKORDERED)


@dataclass(frozen=True)
class PartNumberNeeded(Record):
    """A registered supply with no part number: its order lines wait for the helpdesk's."""

    serial: str
    supply_id: str
    kind: str
    colour: str | None
    customer_id: str
    site_name: str
    model: str | None
    waiting_lines: int  # order lines without a part number, in shipments not yet sent
    waiting_shipments: tuple[str, ...]  # their references (ASR-000123)


@dataclass(frozen=True)
class CannotForecast(Record):
    """A supply the forecast has no usable evidence for (no level, no page counter)."""

    serial: str
    supply_id: str
    kind: str
    colour: str | None
    customer_id: str
    site_name: str
    model: str | None
    why: str  # the forecast's own words ("no level and no page counter")
    updated_at: datetime  # the daily run that said so


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


async def part_numbers_needed(db: Database) -> list[PartNumberNeeded]:
    """Registered supplies without a part number, and the order lines waiting for one."""
    return await db.read(_needed)


async def cannot_forecast(db: Database) -> list[CannotForecast]:
    """Supplies with no usable evidence for a forecast, with the forecast's reason."""
    return await db.read(_blind)
