"""What `simulate` reads back from the store (collector.simulation.runner), as records.

Is: the order lines of the shipments still `placed` (the simulated warehouse ships them the
same evening) and, at the end of the run, the figures of its report: the notices written by
kind, each device's state and high-usage flag, the early replacements detected (R13) and each
supply's last forecast figures. Is not: a writer, or anything the portal or the daily run
reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from collector.store.database import Database
from collector.store.schema import (
    device_states,
    notifications,
    orders,
    shipments,
    supply_events,
    supply_tracks,
)
from collector.store.shipping import PLACED


@dataclass(frozen=True)
class PlacedLine:
    """An order line of a shipment still placed: not shipped nor backordered yet."""

    shipment_id: int
    serial: str
    supply_id: str
    sku: str
    quantity: int
    reason: str
    figures: dict[str, Any]


@dataclass(frozen=True)
class EarlyReplacement:
    """An `early-replacement` event of a supply (R13), with its detail."""

    serial: str
    supply_id: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class SupplyFigures:
    """A supply's track's last forecast figures, as the daily run stored them."""

    serial: str
    supply_id: str
    figures: dict[str, Any]


@dataclass(frozen=True)
class RunOutcome:
    """What a simulated run left in the store, for its report."""

    notices: Counter[str]
    states: dict[str, str]
    high_usage: frozenset[str]
    early_replacements: list[EarlyReplacement]
    supplies: list[SupplyFigures]


async def placed_lines(db: Database) -> list[PlacedLine]:
    """The lines of the shipments still placed, by shipment and line."""

    def read(conn: Connection) -> list[PlacedLine]:
        query = (
            select(
                shipments.c.id,
                orders.c.serial,
                orders.c.supply_id,
                orders.c.sku,
                orders.c.quantity,
                orders.c.reason,
                orders.c.figures,
            )
            .join(orders, orders.c.shipment_id == shipments.c.id)
            .where(shipments.c.status == PLACED)
            .order_by(shipments.c.id, orders.c.id)
        )
        return [PlacedLine(*row) for row in conn.execute(query)]

    return await db.read(read)


async def run_outcome(db: Database) -> RunOutcome:
    """The notices, device states, early replacements and supply figures in the store."""

    def read(conn: Connection) -> RunOutcome:
        notices: Counter[str] = Counter(conn.execute(select(notifications.c.kind)).scalars())
        states = dict(conn.execute(select(device_states.c.serial, device_states.c.state)).all())
        high = frozenset(
            conn.execute(select(device_states.c.serial).where(device_states.c.high_usage)).scalars()
        )
        events = conn.execute(
            select(
                supply_events.c.serial,
                supply_events.c.supply_id,
                supply_events.c.at,
                supply_events.c.detail,
            ).where(supply_events.c.kind == "early-replacement")
        )
        tracks = conn.execute(
            select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.forecast)
        )
        return RunOutcome(
            notices,
            states,
            high,
            [EarlyReplacement(*row) for row in events],
            [SupplyFigures(*row) for row in tracks],
        )

    return await db.read(read)
