"""The daily run's writes: the run's outcome out, in one transaction.

Is: `save` (one write transaction: the run's record, the shipments and order lines, the
tracks, the install events, the device states and the notices). A run that stops half-way
writes nothing: `save` is all or nothing, and the next run starts again from the last saved
one. The snapshot the run decides from is read by collector.store.plan_snapshot (`load`,
`load_snapshot` and `last_run_at`, kept importable here).
Is not: the decisions (collector.replenish.daily) or the lock (collector.daily_run).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection, bindparam, update

from collector.replenish.daily import Outcome, PlacedShipment
from collector.store import shipping
from collector.store.database import Database
from collector.store.fleet import notice_row, recipient
from collector.store.plan_snapshot import EPOCH as EPOCH
from collector.store.plan_snapshot import OVERLAP as OVERLAP
from collector.store.plan_snapshot import last_run_at as last_run_at
from collector.store.plan_snapshot import load as load
from collector.store.plan_snapshot import load_snapshot as load_snapshot
from collector.store.schema import (
    device_states,
    notifications,
    orders,
    plan_runs,
    shipments,
    sqlite_time,
    supply_events,
    supply_tracks,
)
from collector.store.shipping import PLACED


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
    write(conn, outcome, now, run_id)
    return run_id


def write(conn: Connection, outcome: Outcome, now: datetime, run_id: int) -> None:
    """Write an outcome (the whole fleet's, or a chunk's) for the run `run_id`, whose row is
    stored, in the caller's transaction."""
    notices: list[dict[str, Any]] = []
    placed_ids = _save_shipments(conn, outcome.shipments, now, run_id, notices)
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


def _save_shipments(
    conn: Connection,
    placed: list[PlacedShipment],
    now: datetime,
    run_id: int,
    notices: list[dict[str, Any]],
) -> list[int]:
    """The planned shipments, their order lines and their R15 notices (added to `notices`),
    each kind of row in one statement; the shipments' ids, in the order given."""
    if not placed:
        return []
    shipment_ids: list[int] = list(
        conn.execute(
            shipments.insert().returning(shipments.c.id, sort_by_parameter_order=True),
            [
                {
                    "customer_id": p.customer,
                    "site_id": p.site_id,
                    "contact_id": p.contact_id,
                    "status": PLACED,
                    "placed_at": now,
                    "plan_run_id": run_id,
                }
                for p in placed
            ],
        ).scalars()
    )
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
            for shipment_id, p in zip(shipment_ids, placed, strict=True)
            for line in p.shipment.lines
        ],
    )
    for shipment_id, p in zip(shipment_ids, placed, strict=True):
        notices.append(
            notice_row(
                "order_placed",
                p.customer,
                p.contact_id,
                recipient(p.customer_kind),  # R15: the supplies contact; MPS: the helpdesk
                now,
                shipment=shipment_id,
                serials=sorted({line.serial for line in p.shipment.lines}),
            )
        )
    return shipment_ids


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
    if old:
        _update_tracks(conn, old, now)


def _update_tracks(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Write the tracks the snapshot read (one UPDATE per row, in one statement)."""
    if conn.dialect.name == "sqlite":
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
                for row in rows
            ],
        )
    else:
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
            [{**row, "b_serial": row["serial"], "b_supply_id": row["supply_id"]} for row in rows],
        )


def _save_states(
    conn: Connection,
    outcome: Outcome,
    now: datetime,
    notices: list[dict[str, Any]],
) -> None:
    rows: list[dict[str, Any]] = [
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
    if old and conn.dialect.name == "sqlite":
        # Straight through the driver, as the tracks are (every state may change in a run).
        conn.exec_driver_sql(
            "UPDATE device_states SET state = ?, reason = ?, high_usage = ?, since = ?,"
            " notices_sent = ?, updated_at = ? WHERE serial = ?",
            [
                (
                    row["state"],
                    row["reason"],
                    row["high_usage"],
                    sqlite_time(row["since"]),
                    row["notices_sent"],
                    sqlite_time(row["updated_at"]),
                    row["serial"],
                )
                for row in old
            ],
        )
    elif old:
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


async def save_outcome(db: Database, outcome: Outcome, now: datetime, started_at: datetime) -> int:
    """`save` in a write transaction of its own: all of it, or nothing."""
    async with db.transaction() as conn:
        return await conn.run_sync(lambda c: save(c, outcome, now, started_at))
