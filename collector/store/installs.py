"""Which shipments the readings show installed (R13): installs matched to shipped lines.

Is: for the supplies that had an install in a daily run, each install given, oldest first, to
the oldest shipped line of that supply still waiting for one (and out of the warehouse by
then); a shipment whose lines are all matched is installed. A line of a supply that never
reports a number, which no reading can show replaced, does not hold its shipment back.
Is not: the install detection (collector.replenish), or the step itself
(collector.store.shipping.installed takes it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from collector.store.schema import orders, shipments, supply_events, supply_tracks
from collector.store.shipment_states import CANCELLED, DELIVERED, INSTALLED, SHIPPED

Supply = tuple[str, str]  # (serial, supply_id)


def installed_shipments(conn: Connection, keys: set[Supply]) -> list[int]:
    """The shipments waiting for one of these supplies whose every cartridge is now seen
    installed, by id."""
    candidates = _candidates(conn, keys)
    if not candidates:
        return []
    serials = sorted(
        conn.execute(
            select(orders.c.serial).where(orders.c.shipment_id.in_(candidates)).distinct()
        ).scalars()
    )
    line_rows = _line_rows(conn, serials)
    judged = {(row.serial, row.supply_id) for row in line_rows if row.shipment_id in candidates}
    need = _not_seen_installed(
        line_rows, judged, _blind(conn, serials, judged), _installs(conn, serials)
    )
    return sorted(shipment_id for shipment_id in candidates if need.get(shipment_id, 0) <= 0)


def _candidates(conn: Connection, keys: set[Supply]) -> set[int]:
    """The shipments on their way or delivered that wait for one of these supplies."""
    # A consolidated one (R10) also holds other devices' lines, and all of them must be seen
    # installed, so its every device's lines (the older ones too: installs go to the oldest
    # line first) are judged.
    touched = sorted({serial for serial, _ in keys})
    return {
        row.shipment_id
        for row in conn.execute(
            select(orders.c.shipment_id, orders.c.serial, orders.c.supply_id)
            .join(shipments, shipments.c.id == orders.c.shipment_id)
            .where(orders.c.serial.in_(touched), shipments.c.status.in_((SHIPPED, DELIVERED)))
        )
        if (row.serial, row.supply_id) in keys
    }


def _line_rows(conn: Connection, serials: Sequence[str]) -> Sequence[Any]:
    """These devices' order lines of shipments not cancelled, oldest shipment first."""
    return conn.execute(
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


def _installs(conn: Connection, serials: Sequence[str]) -> dict[Supply, list[datetime]]:
    """Each supply's installs, oldest first."""
    installs: dict[Supply, list[datetime]] = defaultdict(list)
    for event in conn.execute(
        select(supply_events.c.serial, supply_events.c.supply_id, supply_events.c.at)
        .where(supply_events.c.serial.in_(serials))
        .order_by(supply_events.c.at, supply_events.c.id)
    ):
        installs[(event.serial, event.supply_id)].append(event.at)
    return installs


def _blind(conn: Connection, serials: Sequence[str], judged: set[Supply]) -> set[Supply]:
    """The judged supplies that never reported a number (a waste box saying only "some
    remaining"): they cannot be seen replaced, so their lines do not hold a shipment back."""
    return {
        (serial, supply_id)
        for serial, supply_id, track in conn.execute(
            select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.track).where(
                supply_tracks.c.serial.in_(serials)
            )
        )
        if (serial, supply_id) in judged and track.get("last_value") is None
    }


def _not_seen_installed(
    line_rows: Sequence[Any],
    judged: set[Supply],
    blind: set[Supply],
    installs: dict[Supply, list[datetime]],
) -> dict[int, int]:
    """Each shipment's cartridges not matched to an install."""
    need: dict[int, int] = defaultdict(int)
    waiting: dict[Supply, list[list[Any]]] = defaultdict(list)
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
    return need
