"""What the demo reads back from the store (demo.days, demo.summary), as records.

Is: the order lines of delivered shipments (the cartridges a customer may put in, R13), the
closing figures of a run (readings stored, device states, order lines and cartridges,
shipments by status and how many were backordered, notices by kind) and, per printer, the
cartridges ordered and what its first supply's last forecast said. Is not: a writer, the
demo's words for these figures (demo.words), or anything the portal or the daily run reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from collector.store.database import Database
from collector.store.schema import (
    asr_supplies,
    device_states,
    notifications,
    orders,
    readings,
    shipment_events,
    shipments,
    supply_tracks,
)


@dataclass(frozen=True)
class DeliveredLine:
    """An order line of a delivered shipment, with the supply's index in the printer."""

    id: int
    serial: str
    supply_index: str  # readings' supplies.supply_index, e.g. "1.1"
    quantity: int


@dataclass(frozen=True)
class RunFigures:
    """The closing figures of a run: what the collector stored, ordered and sent."""

    readings: int
    states: Counter[str]  # registered devices by lifecycle state
    lines: int  # order lines
    cartridges: int  # their quantities, summed
    shipments: Counter[str]  # by status
    backordered: int  # shipments backordered at some point
    notices: Counter[str]  # by kind


@dataclass(frozen=True)
class PrinterOutcome:
    """A printer's cartridges ordered, and the `why` of its first supply's last forecast."""

    serial: str
    cartridges: int
    why: str | None  # None: no forecast yet


async def delivered_lines(db: Database) -> list[DeliveredLine]:
    """The lines of the delivered shipments, by line."""

    def read(conn: Connection) -> list[DeliveredLine]:
        query = (
            select(orders.c.id, orders.c.serial, asr_supplies.c.supply_index, orders.c.quantity)
            .join(shipments, shipments.c.id == orders.c.shipment_id)
            .join(
                asr_supplies,
                (asr_supplies.c.serial == orders.c.serial)
                & (asr_supplies.c.supply_id == orders.c.supply_id),
            )
            .where(shipments.c.status == "delivered")
            .order_by(orders.c.id)
        )
        return [DeliveredLine(*row) for row in conn.execute(query)]

    return await db.read(read)


async def run_figures(db: Database) -> RunFigures:
    """The readings, device states, order lines, shipments and notices in the store."""

    def counted(conn: Connection, column: ColumnElement[Any]) -> Counter[str]:
        query = select(column, func.count()).group_by(column)
        # A list of rows, not the Result: dict() would take a Result, having keys(), for a map.
        return Counter(dict(conn.execute(query).tuples().all()))

    def read(conn: Connection) -> RunFigures:
        backordered = select(func.count(func.distinct(shipment_events.c.shipment_id))).where(
            shipment_events.c.status == "backordered"
        )
        return RunFigures(
            readings=conn.execute(select(func.count()).select_from(readings)).scalar_one(),
            states=counted(conn, device_states.c.state),
            lines=conn.execute(select(func.count()).select_from(orders)).scalar_one(),
            cartridges=conn.execute(select(func.sum(orders.c.quantity))).scalar_one() or 0,
            shipments=counted(conn, shipments.c.status),
            backordered=conn.execute(backordered).scalar_one(),
            notices=counted(conn, notifications.c.kind),
        )

    return await db.read(read)


async def printer_outcomes(db: Database, serials: Iterable[str]) -> list[PrinterOutcome]:
    """For each serial, in order: its cartridges ordered and its first supply's forecast."""
    wanted = list(serials)

    def read(conn: Connection) -> list[PrinterOutcome]:
        out = []
        for serial in wanted:
            ordered = conn.execute(
                select(func.coalesce(func.sum(orders.c.quantity), 0)).where(
                    orders.c.serial == serial
                )
            ).scalar_one()
            forecast = conn.execute(
                select(supply_tracks.c.forecast)
                .where(supply_tracks.c.serial == serial)
                .order_by(supply_tracks.c.supply_id)
            ).scalar()
            out.append(PrinterOutcome(serial, ordered, forecast.get("why") if forecast else None))
        return out

    return await db.read(read)
