"""The daily run's reads and writes: a snapshot of the fleet in, the run's outcome out.

Is: `load` (one read transaction: registered devices and supplies, their tracks, the readings
received since the last run, the orders not yet in a balance) and `save` (one write
transaction: the run's record, the shipments and order lines, the tracks, the install events,
the device states and the notices). A run that stops half-way writes nothing: `save` is all
or nothing, and the next run starts again from the last saved one.
New readings are those received after the last run's `received_until`, less `OVERLAP`: a
reading that another collector process received just before that time but committed after it
is still seen, and one seen twice is ignored by the track, which only moves forward.
Is not: the decisions (collector.replenish.daily) or the lock (collector.replenish.job).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection, bindparam, func, select, update

from collector.replenish.daily import (
    Device,
    Key,
    Outcome,
    PlacedShipment,
    Snapshot,
    StoredState,
    Supply,
    Uncounted,
    point_of,
)
from collector.replenish.track import Point, Track
from collector.store import shipping
from collector.store.database import Database
from collector.store.fleet import notice_row, recipient
from collector.store.schema import (
    asr_devices,
    asr_supplies,
    customers,
    device_states,
    devices,
    notifications,
    orders,
    plan_runs,
    readings,
    shipments,
    sqlite_time,
    supplies,
    supply_events,
    supply_tracks,
)
from collector.store.shipping import CANCELLED, DELIVERED, INSTALLED, OPEN, PLACED

OVERLAP = timedelta(minutes=10)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def load(conn: Connection, now: datetime) -> Snapshot:
    """What the run at `now` decides from, read in one transaction."""
    last = conn.execute(select(func.max(plan_runs.c.received_until))).scalar_one_or_none()
    since = (last - OVERLAP) if last is not None else EPOCH
    states = {
        row.serial: StoredState(row.state, row.since, row.notices_sent, row.high_usage, row.reason)
        for row in conn.execute(select(device_states))
    }
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
    grouped = query.group_by(orders.c.serial, orders.c.supply_id, shipments.c.status, recent)
    for serial, supply_id, status, fresh, count, quantity in conn.execute(grouped):
        if status in (DELIVERED, INSTALLED):
            delivered.add(serial)
        elif status in OPEN:
            in_transit[serial] += count
        if status in OPEN or (status == DELIVERED and fresh):
            on_the_way[serial, supply_id] += int(quantity or 0)
    query = (
        select(asr_devices, customers.c.kind, devices.c.last_seen)
        .join(customers, customers.c.id == asr_devices.c.customer_id)
        .outerjoin(devices, devices.c.serial == asr_devices.c.serial)
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
            select(asr_supplies).order_by(asr_supplies.c.serial, asr_supplies.c.supply_id)
        )
    ]
    tracks = {
        (serial, supply_id): Track.from_json(track)
        for serial, supply_id, track in conn.execute(
            select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.track)
        )
    }
    points = _points(conn, since, now, tracks)
    uncounted = [
        Uncounted(row.id, row.serial, row.supply_id, row.quantity)
        for row in conn.execute(
            select(orders.c.id, orders.c.serial, orders.c.supply_id, orders.c.quantity)
            .join(shipments, shipments.c.id == orders.c.shipment_id)
            .where(orders.c.counted_at.is_(None), shipments.c.status != CANCELLED)
        )
    ]
    return Snapshot(fleet, registered, tracks, points, uncounted, now, on_the_way)


def _points(
    conn: Connection, since: datetime, until: datetime, tracks: dict[Key, Track]
) -> dict[Key, list[Point]]:
    query = (
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
        .where(readings.c.received_at > since, readings.c.received_at <= until)
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


def save(conn: Connection, outcome: Outcome, now: datetime, started_at: datetime) -> int:
    """Write a run's outcome in the caller's transaction; the run's id."""
    run_id: int = conn.execute(
        plan_runs.insert()
        .values(
            as_of=now,
            started_at=started_at,
            finished_at=now,
            received_until=now,
            counts=outcome.counts,
        )
        .returning(plan_runs.c.id)
    ).scalar_one()
    notices: list[dict[str, Any]] = []
    placed_ids = [
        _save_shipment(conn, placed, now, run_id, notices) for placed in outcome.shipments
    ]
    shipping.placed(conn, placed_ids, now, "plan")  # each to the warehouse (R3)
    if outcome.counted:
        conn.execute(
            update(orders)
            .where(orders.c.id == bindparam("order_id"))
            .values(counted_at=bindparam("counted")),
            [{"order_id": order_id, "counted": now} for order_id in outcome.counted],
        )
    _save_tracks(conn, outcome, now)
    _save_installs(conn, outcome, run_id)
    # R13: a shipment is installed once the readings saw each of its cartridges go in.
    shipping.installed(conn, (key for key, _ in outcome.installs), now, run_id)
    _save_states(conn, outcome, now, notices)
    if notices:
        conn.execute(notifications.insert(), notices)
    return run_id


def _save_shipment(
    conn: Connection,
    placed: PlacedShipment,
    now: datetime,
    run_id: int,
    notices: list[dict[str, Any]],
) -> int:
    """One planned shipment, its order lines and its R15 notice (added to `notices`); its id."""
    shipment_id: int = conn.execute(
        shipments.insert()
        .values(
            customer_id=placed.customer,
            site_id=placed.site_id,
            contact_id=placed.contact_id,
            status=PLACED,
            placed_at=now,
            plan_run_id=run_id,
        )
        .returning(shipments.c.id)
    ).scalar_one()
    lines = placed.shipment.lines
    conn.execute(
        orders.insert(),
        [
            {
                "shipment_id": shipment_id,
                "serial": line.serial,
                "supply_id": line.supply_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "reason": line.reason,
                "figures": line.figures,
                "placed_at": now,
                "counted_at": now,  # the run put it in the balance
            }
            for line in lines
        ],
    )
    notices.append(
        notice_row(
            "order_placed",
            placed.customer,
            placed.contact_id,
            recipient(placed.customer_kind),  # R15: the supplies contact; MPS: the helpdesk
            now,
            shipment=shipment_id,
            serials=sorted({line.serial for line in lines}),
        )
    )
    return shipment_id


def _save_installs(conn: Connection, outcome: Outcome, run_id: int) -> None:
    """R13: the cartridges seen going in, each an install or an early replacement."""
    if not outcome.installs:
        return
    conn.execute(
        supply_events.insert(),
        [
            {
                "serial": serial,
                "supply_id": supply_id,
                "kind": "early-replacement" if install.early else "install",
                "at": install.at,
                "detail": {
                    "left_before": round(install.left_before, 3),
                    "left_at_swap": round(install.left_at_swap, 3),
                },
                "plan_run_id": run_id,
            }
            for (serial, supply_id), install in outcome.installs
        ],
    )


def _save_tracks(conn: Connection, outcome: Outcome, now: datetime) -> None:
    rows: list[dict[str, Any]] = [
        {
            "serial": serial,
            "supply_id": supply_id,
            "track": track.to_json(),
            "forecast": figures,
            "runs_out_at": forecast.runs_out_at(now),
            "balance": track.balance,
            "updated_at": now,
        }
        for (serial, supply_id), track, forecast in outcome.tracks
        for figures in (forecast.figures(),)
    ]
    if not rows:
        return
    known = outcome.tracked  # the tracks the snapshot read: rows to update, not insert
    new = [row for row in rows if (row["serial"], row["supply_id"]) not in known]
    old = [row for row in rows if (row["serial"], row["supply_id"]) in known]
    if new:
        conn.execute(supply_tracks.insert(), new)
    if old and conn.dialect.name == "sqlite":
        # On SQLite straight through the driver with the JSON encoded once, not SQLAlchemy's
        # per-row parameter processing: in a simulation every track changes every day.
        when = sqlite_time(now)
        conn.exec_driver_sql(
            "UPDATE supply_tracks SET track = ?, forecast = ?, runs_out_at = ?,"
            " balance = ?, updated_at = ? WHERE serial = ? AND supply_id = ?",
            [
                (
                    to_json(row["track"]).decode(),
                    to_json(row["forecast"]).decode(),
                    None if row["runs_out_at"] is None else sqlite_time(row["runs_out_at"]),
                    row["balance"],
                    when,
                    row["serial"],
                    row["supply_id"],
                )
                for row in old
            ],
        )
    elif old:
        conn.execute(
            update(supply_tracks)
            .where(
                (supply_tracks.c.serial == bindparam("b_serial"))
                & (supply_tracks.c.supply_id == bindparam("b_supply_id"))
            )
            .values(
                track=bindparam("track"),
                forecast=bindparam("forecast"),
                runs_out_at=bindparam("runs_out_at"),
                balance=bindparam("balance"),
                updated_at=bindparam("updated_at"),
            ),
            [{**row, "b_serial": row["serial"], "b_supply_id": row["supply_id"]} for row in old],
        )


def _save_states(
    conn: Connection,
    outcome: Outcome,
    now: datetime,
    notices: list[dict[str, Any]],
) -> None:
    rows = [
        {
            "serial": s.serial,
            "state": s.state.state,
            "reason": s.state.reason,
            "high_usage": s.high_usage,
            "since": s.since,
            "notices_sent": s.notices_sent,
            "updated_at": now,
        }
        for s in outcome.states
        if s.changed  # a state that stays as it was is not rewritten
    ]
    stored = {s.serial for s in outcome.states if s.stored}  # the snapshot read their rows
    new = [row for row in rows if row["serial"] not in stored]
    old = [{**row, "b_serial": row["serial"]} for row in rows if row["serial"] in stored]
    if new:
        conn.execute(device_states.insert(), new)
    if old:
        conn.execute(
            update(device_states)
            .where(device_states.c.serial == bindparam("b_serial"))
            .values({c: bindparam(c) for c in old[0] if c not in ("serial", "b_serial")}),
            old,
        )
    # R16: one notice per customer and contact (or helpdesk) naming every device that stopped.
    due: dict[tuple[str, str, int, str], list[str]] = defaultdict(list)
    for s in outcome.states:
        if s.notice is not None:
            due[s.notice, s.customer, s.contact_id, recipient(s.customer_kind)].append(s.serial)
    for (kind, customer, contact_id, to), serials in sorted(due.items()):
        notices.append(notice_row(kind, customer, contact_id, to, now, serials=sorted(serials)))


async def last_run_at(db: Database) -> datetime | None:
    """When the latest stored run was made (its `as_of`); None before the first."""
    latest = select(func.max(plan_runs.c.as_of))
    return await db.read(lambda conn: conn.execute(latest).scalar_one_or_none())


async def load_snapshot(db: Database, now: datetime) -> Snapshot:
    """`load` in a read transaction of its own."""
    return await db.read(lambda conn: load(conn, now))


async def save_outcome(db: Database, outcome: Outcome, now: datetime, started_at: datetime) -> int:
    """`save` in a write transaction of its own: all of it, or nothing."""
    async with db.transaction() as conn:
        return await conn.run_sync(lambda c: save(c, outcome, now, started_at))
