"""The daily run's snapshot: what the run at `now` decides from, read in one transaction.

Is: `load` (registered devices and supplies, their tracks, the readings received since the
last run, the orders not yet in a balance, the shipments on their way) and `last_run_at`.
New readings are those received after the last run's `received_until`, less `OVERLAP`: a
reading that another collector process received just before that time but committed after it
is still seen, and one seen twice is ignored by the track, which only moves forward.
Is not: the decisions (collector.replenish.daily) or the writes (collector.store.plans).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, func, select

from collector.replenish.daily import (
    Device,
    Key,
    Snapshot,
    StoredState,
    Supply,
    Uncounted,
    point_of,
)
from collector.replenish.track import Point, Track
from collector.store.database import Database
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    customers,
    device_states,
    devices,
    orders,
    plan_runs,
    readings,
    shipments,
    supplies,
    supply_tracks,
)
from collector.store.shipment_states import CANCELLED, DELIVERED, INSTALLED, OPEN

_R = TypeVar("_R", bound=tuple[Any, ...])
OVERLAP = timedelta(minutes=10)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Contacts:
    """A chunk of the fleet: the devices whose supplies contact's id is in (after, through]
    (through None: to the end), so each R10 group and each R16 notice is whole in one."""

    after: int
    through: int | None

    def devices(self) -> Select[tuple[str]]:
        """The serials of the chunk's devices."""
        query = select(asr_devices.c.serial).where(asr_devices.c.contact_id > self.after)
        if self.through is not None:
            query = query.where(asr_devices.c.contact_id <= self.through)
        return query


def new_since(conn: Connection) -> datetime:
    """Readings received after this are new to the next run (the last run's, less OVERLAP)."""
    last = conn.execute(select(func.max(plan_runs.c.received_until))).scalar_one_or_none()
    return (last - OVERLAP) if last is not None else EPOCH


def load(
    conn: Connection,
    now: datetime,
    since: datetime | None = None,
    chunk: Contacts | None = None,
) -> Snapshot:
    """What the run at `now` decides from, read in one transaction: the whole fleet, or with
    `chunk` its devices only (and `since`, the run's, given: the readings it takes)."""
    if since is None:
        since = new_since(conn)
    mine = _scoped(chunk)
    states = {
        row.serial: StoredState(row.state, row.since, row.notices_sent, row.high_usage, row.reason)
        for row in conn.execute(mine(select(device_states), device_states.c.serial))
    }
    in_transit, delivered, on_the_way = _shipped(conn, now, mine)
    query = mine(
        select(asr_devices, customers.c.kind, devices.c.last_seen)
        .join(customers, customers.c.id == asr_devices.c.customer_id)
        .outerjoin(devices, devices.c.serial == asr_devices.c.serial),
        asr_devices.c.serial,
    )
    fleet = {
        row.serial: Device(
            serial=row.serial,
            customer=row.customer_id,
            customer_kind=row.kind,
            site_id=row.site_id,
            contact_id=row.contact_id,
            registered_at=row.registered_at,
            last_reading_at=row.last_seen,
            in_transit=in_transit[row.serial],
            delivered_ever=row.serial in delivered,
            state=states.get(row.serial),
        )
        for row in conn.execute(query)
    }
    registered = [
        Supply(row.serial, row.supply_id, row.kind, row.colour, row.sku, row.rated_yield)
        for row in conn.execute(
            mine(select(asr_supplies), asr_supplies.c.serial).order_by(
                asr_supplies.c.serial, asr_supplies.c.supply_id
            )
        )
    ]
    tracks = {
        (serial, supply_id): Track.from_json(track)
        for serial, supply_id, track in conn.execute(
            mine(
                select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.track),
                supply_tracks.c.serial,
            )
        )
    }
    points = _points(conn, since, now, tracks, mine)
    uncounted = [
        Uncounted(row.id, row.serial, row.supply_id, row.quantity)
        for row in conn.execute(
            mine(
                select(orders.c.id, orders.c.serial, orders.c.supply_id, orders.c.quantity)
                .join(shipments, shipments.c.id == orders.c.shipment_id)
                .where(orders.c.counted_at.is_(None), shipments.c.status != CANCELLED),
                orders.c.serial,
            )
        )
    ]
    return Snapshot(fleet, registered, tracks, points, uncounted, now, on_the_way)


_Scope = Callable[[Select[_R], ColumnElement[str]], Select[_R]]


def _scoped(chunk: Contacts | None) -> _Scope[Any]:
    """A query narrowed to the chunk's devices by its serial column (the whole fleet: as is)."""
    if chunk is None:
        return lambda query, serial: query
    serials = chunk.devices().scalar_subquery()
    return lambda query, serial: query.where(serial.in_(serials))


def _shipped(
    conn: Connection, now: datetime, mine: _Scope[Any]
) -> tuple[dict[str, int], set[str], dict[Key, int]]:
    """Per device, its order lines on their way and whether one was ever delivered; per
    supply, the cartridges on their way or delivered in the last day."""
    in_transit: dict[str, int] = defaultdict(int)
    delivered: set[str] = set()
    # R13: cartridges a customer cannot have put in yet: on their way, or delivered in the
    # last day (collector.replenish.forecast.unseen_swaps).
    on_the_way: dict[Key, int] = defaultdict(int)
    recent = shipments.c.delivered_at > now - timedelta(days=1)
    query = select(
        orders.c.serial,
        orders.c.supply_id,
        shipments.c.status,
        recent,
        func.count(),
        func.sum(orders.c.quantity),
    ).join(shipments, shipments.c.id == orders.c.shipment_id)
    grouped = mine(query, orders.c.serial).group_by(
        orders.c.serial, orders.c.supply_id, shipments.c.status, recent
    )
    for serial, supply_id, status, fresh, count, quantity in conn.execute(grouped):
        if status in (DELIVERED, INSTALLED):
            delivered.add(serial)
        elif status in OPEN:
            in_transit[serial] += count
        if status in OPEN or (status == DELIVERED and fresh):
            on_the_way[serial, supply_id] += int(quantity or 0)
    return in_transit, delivered, on_the_way


def _points(
    conn: Connection,
    since: datetime,
    until: datetime,
    tracks: dict[Key, Track],
    mine: _Scope[Any],
) -> dict[Key, list[Point]]:
    query = mine(
        select(
            readings.c.id,
            readings.c.serial,
            asr_supplies.c.supply_id,
            readings.c.read_at,
            supplies.c.percent,
            supplies.c.grams_left,
            supplies.c.grams_used,
            supplies.c.quality,
            supplies.c.receptacle,
            supplies.c.level,
            readings.c.page_count,
            readings.c.toner_alert,
        )
        .select_from(readings)
        .join(supplies, supplies.c.reading_id == readings.c.id)
        .join(
            asr_supplies,
            (asr_supplies.c.serial == readings.c.serial)
            & (asr_supplies.c.supply_index == supplies.c.supply_index),
        )
        .where(readings.c.received_at > since, readings.c.received_at <= until),
        readings.c.serial,
    )
    rows = conn.execute(query).all()
    # The device's toner alert (noToner, lowToner) names no supply: it is a supply's only
    # when that is the reading's one toner, or its one toner whose gauge gives no number.
    toners: dict[int, list[bool]] = defaultdict(list)
    for row in rows:
        if not row.receptacle:
            toners[row.id].append(row.percent is None and row.grams_left is None)
    points: dict[Key, list[Point]] = defaultdict(list)
    for row in rows:
        key = (row.serial, row.supply_id)
        blind = row.percent is None and row.grams_left is None
        own = len(toners[row.id]) == 1 or (blind and sum(toners[row.id]) == 1)
        track = tracks.get(key)
        hint = track.unit if track is not None else None
        point = point_of(
            row.read_at,
            row.percent,
            row.grams_left,
            row.grams_used,
            row.quality,
            row.receptacle,
            hint,
            level=row.level,
            pages=row.page_count,
            alert=row.toner_alert if own else None,
            shared=blind and not own,
        )
        points[key].append(point)
    return points


async def last_run_at(db: Database) -> datetime | None:
    """When the latest stored run was made (its `as_of`); None before the first."""
    latest = select(func.max(plan_runs.c.as_of))
    return await db.read(lambda conn: conn.execute(latest).scalar_one_or_none())


async def load_snapshot(db: Database, now: datetime) -> Snapshot:
    """`load` in a read transaction of its own."""
    return await db.read(lambda conn: load(conn, now))
