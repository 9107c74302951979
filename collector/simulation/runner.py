"""`asr-collector simulate`: a fleet's life, day by day, through the collector's real code.

Is: the contract's loop (docs/simulation-format.md). The fleet is registered in a
fresh store (R4); each simulated day, in order:
1. shipments due arrive (`lead_days` after they were placed, later when backordered) and
   are marked delivered; a device that is out installs one at once;
2. the customer's early swaps of the scenario happen (R13);
3. devices print their usage.csv day (collector.simulation.world: installs when empty,
   stock-out days when no spare is on site);
4. reachable devices are read at noon by an enrolled agent and the signed batches go through
   the real ingest and storage (collector.simulation.agent);
5. extra orders of the scenario are recorded as the helpdesk records them (R14);
6. the real daily run (collector.replenish.job.run_plan) forecasts, plans and writes orders
   and notices at 23:00;
7. the new shipments are shipped, or backordered when the scenario says so (R15).
The fleet's registration carries each supply's rated `yield_pages` (rated_yield). The report
(collector.simulation.report) counts stock-outs, orders, shipments, spares on site and the
notices written, and per supply its gauge, installs and stock-out days. With
`policy="naive"` the same world is run with the naive policy instead of the collector
(collector.simulation.naive: one cartridge when a supply's gauge reads under 10 %, one
shipment per order): the baseline of docs/replenishment.md.
Is not: a second implementation of the rules: the ASR policy is the collector's own code.
"""

from __future__ import annotations

import gc
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from collector.replenish.job import run_plan
from collector.service import Collector, Settings
from collector.simulation.agent import SimAgent, supply_index
from collector.simulation.contract import Fleet, Usage
from collector.simulation.naive import naive
from collector.simulation.report import EMAILS, tally
from collector.simulation.world import Key, World, backorder_delay
from collector.store import fleet as store
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.store.schema import (
    device_states,
    notifications,
    orders,
    shipments,
    supply_events,
    supply_tracks,
)

FIGURES = ("rate_per_day", "days_left_total", "balance")  # of each order line, in the log


@dataclass
class Clock:
    """The simulated time the collector sees."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Delivery:
    """A shipment on its way: the day it arrives, and its lines."""

    shipment: str
    lines: list[tuple[Key, int]]
    arrives: int


@dataclass
class Log:
    """What the run did, for the report."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[int, list[Delivery]] = field(default_factory=lambda: defaultdict(list))
    shipping: dict[int, list[Delivery]] = field(default_factory=lambda: defaultdict(list))
    readings: int = 0


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.utc)


async def simulate(
    fleet: Fleet, usage: Usage, policy: str = "asr", database: Path | None = None
) -> dict[str, Any]:
    """Run the fleet's days under `policy` ('asr' or 'naive'); the report."""
    if policy == "naive":
        return naive(fleet, usage)
    if policy != "asr":
        raise ValueError(f"policy must be 'asr' or 'naive', not {policy!r}")
    # The fleet and its usage (1.5 million rows for 1,000 devices over a year) live as long
    # as the run: out of the cyclic collector's walks, which would go over them again and again.
    gc.freeze()
    try:
        return await _asr_in_temporary_store(fleet, usage, database)
    finally:
        gc.unfreeze()


async def _asr_in_temporary_store(
    fleet: Fleet, usage: Usage, database: Path | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="asr-sim-") as tmp:
        path = database or Path(tmp) / "simulation.db"
        db = Database.open(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate(db)
            return await _asr(fleet, usage, db)
        finally:
            await db.close()


async def _asr(fleet: Fleet, usage: Usage, db: Database) -> dict[str, Any]:
    clock = Clock(_at(fleet.start, 0))
    collector = Collector(db, Settings(), clock)
    await _register(fleet, db, clock.now)
    agent = SimAgent(collector)
    token, _ = await collector.create_token(fleet.customers[0].id, fleet.customers[0].sites[0].id)
    await agent.enroll(token)
    world = World.of(fleet)
    log = Log()
    swaps = defaultdict(list)
    for swap in fleet.replacements:
        swaps[fleet.day_index(swap.date)].append((swap.serial, swap.supply))
    extras = defaultdict(list)
    for extra in fleet.extra_orders:
        extras[fleet.day_index(extra.date)].append(extra)
    models = {d.serial: d.model for d in fleet.devices}
    for day in range(fleet.days):
        today = fleet.date_of(day)
        clock.now = _at(today, 7)
        await _move_along(db, world, log, day, clock.now)
        for key in swaps.get(day, ()):
            world.swap_early(day, key)
        world.live_day(day, usage)
        clock.now = _at(today, 12)
        reachable = [
            agent.read(serial, models[serial], slots, world.page_count(serial))
            for serial, slots in world.devices.items()
            if usage.reachable[serial][day]
        ]
        log.readings += await agent.push(reachable, clock.now)
        clock.now = _at(today, 14)
        for extra in extras.get(day, ()):
            await store.record_extra_order(
                db,
                extra.serial,
                extra.supply,
                extra.quantity,
                clock.now,
                waste_per_black=fleet.rules.waste_per_black,
            )
        clock.now = _at(today, 23)
        await run_plan(db, fleet.rules, clock.now)
        await _ship_new(fleet, db, log, day, clock.now)
        world.end_of_day()
    return await _report(fleet, db, world, log, "asr")


async def _register(fleet: Fleet, db: Database, now: datetime) -> None:
    for customer in fleet.customers:
        await store.add_customer(
            db,
            customer.id,
            customer.kind,
            now,
            name=customer.name,
            language=customer.language,
            sites_=[(site.id, site.address) for site in customer.sites],
            contacts_=[store.ContactSpec(c.id, c.email, c.name) for c in customer.contacts],
        )
    await store.register(
        db,
        [
            store.DeviceSpec(
                serial=device.serial,
                customer=device.customer,
                site=device.site,
                contact=device.contact,
                model=device.model,
                supplies=tuple(
                    store.SupplySpec(
                        supply_id=spec.id,
                        supply_index=supply_index(i),
                        kind=spec.kind,
                        colour=spec.colour,
                        sku=spec.sku,
                        capacity_grams=spec.capacity_grams,
                        rated_yield=spec.yield_pages,
                    )
                    for i, spec in enumerate(device.supplies)
                ),
            )
            for device in fleet.devices
        ],
        now,
    )


async def _move_along(db: Database, world: World, log: Log, day: int, now: datetime) -> None:
    """Backordered shipments leave, due shipments arrive (R15)."""
    leaving = log.shipping.pop(day, [])
    await store.move_shipments(db, [int(d.shipment) for d in leaving], store.SHIPPED, now)
    arriving = log.pending.pop(day, [])
    for delivery in arriving:
        for key, quantity in delivery.lines:
            world.deliver(key, quantity, day)
    await store.move_shipments(db, [int(d.shipment) for d in arriving], store.DELIVERED, now)


async def _ship_new(fleet: Fleet, db: Database, log: Log, day: int, now: datetime) -> None:
    """The shipments placed today go out, or wait when backordered."""

    def placed(conn: Any) -> list[Any]:
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
            .where(shipments.c.status == store.PLACED)
            .order_by(shipments.c.id, orders.c.id)
        )
        return list(conn.execute(query))

    lines: dict[int, list[Any]] = defaultdict(list)
    for row in await db.read(placed):
        lines[row.id].append(row)
    shipped, backordered = [], []
    for shipment_id, rows in lines.items():
        delay = backorder_delay(fleet, {row.sku for row in rows}, fleet.date_of(day))
        delivery = Delivery(
            str(shipment_id),
            [((row.serial, row.supply_id), row.quantity) for row in rows],
            arrives=day + delay + fleet.lead_days,
        )
        log.pending[delivery.arrives].append(delivery)
        if delay:
            backordered.append(shipment_id)
            log.shipping[day + delay].append(delivery)
        else:
            shipped.append(shipment_id)
        log.orders.extend(
            {
                "day": fleet.date_of(day).isoformat(),
                "shipment": str(shipment_id),
                "serial": row.serial,
                "supply": row.supply_id,
                "sku": row.sku,
                "quantity": row.quantity,
                "reason": row.reason,
                **{k: row.figures.get(k) for k in FIGURES if k in row.figures},
            }
            for row in rows
        )
    await store.move_shipments(db, shipped, store.SHIPPED, now)
    await store.move_shipments(db, backordered, store.BACKORDERED, now)


async def _report(
    fleet: Fleet, db: Database, world: World, log: Log, policy: str
) -> dict[str, Any]:
    def read(conn: Any) -> tuple[Counter[str], dict[str, str], list[Any]]:
        kinds: Counter[str] = Counter(conn.execute(select(notifications.c.kind)).scalars())
        states = dict(conn.execute(select(device_states.c.serial, device_states.c.state)).all())
        events = list(
            conn.execute(
                select(
                    supply_events.c.serial,
                    supply_events.c.supply_id,
                    supply_events.c.at,
                    supply_events.c.detail,
                ).where(supply_events.c.kind == "early-replacement")
            )
        )
        return kinds, states, events

    kinds, states, events = await db.read(read)
    tracks = await db.read(
        lambda conn: list(
            conn.execute(
                select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.forecast)
            )
        )
    )
    high = await db.read(
        lambda conn: set(
            conn.execute(select(device_states.c.serial).where(device_states.c.high_usage)).scalars()
        )
    )
    report = tally(fleet, world, log.orders, policy)
    report["emails"] = {kind: kinds.get(kind, 0) for kind in EMAILS}
    report["emails"]["shipped"] += kinds.get("backorder_shipped", 0)  # R15: shipping emails
    report["readings"] = log.readings
    report["early_replacements_detected"] = [
        {"day": at.date().isoformat(), "serial": serial, "supply": supply_id, **detail}
        for serial, supply_id, at, detail in events
    ]
    for serial, entry in report["per_device"].items():
        entry["state"] = states.get(serial, "unknown")
        entry["high_usage"] = serial in high
    for serial, supply_id, figures in tracks:
        supply = report["per_device"][serial]["supplies"].setdefault(supply_id, {})
        supply.update({k: figures.get(k) for k in FIGURES})
        supply.update(basis=figures.get("basis"), why=figures.get("why"))  # issue 14
    # R6: flagged devices are the helpdesk's to supply by hand, which no scenario models.
    report["stockout_device_days_asr_managed"] = sum(
        entry["stockout_days"] for entry in report["per_device"].values() if not entry["high_usage"]
    )
    return report
