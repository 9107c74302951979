"""`asr-collector simulate`: a fleet's life, day by day, through the collector's real code.

Is: the contract's loop (docs/simulation-format.md). The fleet is registered in a
fresh store (R4); each simulated day, in order:
1. shipments due arrive (`lead_days` after they were placed, later when backordered) and
   are marked delivered; a device that is out installs one at once;
2. the customer's early swaps of the scenario happen (R13);
3. devices print their usage.csv day (collector.simulation.world: installs when empty,
   stock-out days when no spare is on site);
4. reachable devices are read at noon by their customer's enrolled agent and the signed
   batches go through the real ingest and storage (collector.simulation.agent);
5. extra orders of the scenario are recorded as the helpdesk records them (R14);
6. the real daily run (collector.daily_run.run_plan) forecasts, plans and writes orders
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
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from collector.customers import NewCustomer, add_customers
from collector.daily_run import run_plan
from collector.service import Collector, Settings
from collector.simulation.agent import SimAgent, supply_index
from collector.simulation.contract import Fleet, Usage
from collector.simulation.naive import naive
from collector.simulation.report import EMAILS, tally
from collector.simulation.world import Key, World, backorder_delay
from collector.store import fleet as store
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.store.read_simulation import PlacedLine, placed_lines, run_outcome
from wire.reading import PrinterReading

FIGURES = ("rate_per_day", "days_left_total", "balance")  # of each order line, in the log


DayHook = Callable[[int, Database, datetime], Awaitable[None]]
"""Called after each simulated day, once its daily run's shipments went out: the day's
index (0 is the fleet's start), the store, and the simulated time (the daily run's)."""


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
    fleet: Fleet,
    usage: Usage,
    policy: str = "asr",
    database: Path | None = None,
    on_day: DayHook | None = None,
) -> dict[str, Any]:
    """Run the fleet's days under `policy` ('asr' or 'naive'); the report.

    `on_day` (ASR only: the naive policy has no store and no daily run) is awaited after
    each day (DayHook).
    """
    if policy == "naive":
        return naive(fleet, usage)
    if policy != "asr":
        raise ValueError(f"policy must be 'asr' or 'naive', not {policy!r}")
    # The fleet and its usage (1.5 million rows for 1,000 devices over a year) live as long
    # as the run: out of the cyclic collector's walks, which would go over them again and again.
    gc.freeze()
    try:
        return await _asr_in_temporary_store(fleet, usage, database, on_day)
    finally:
        gc.unfreeze()


async def _asr_in_temporary_store(
    fleet: Fleet, usage: Usage, database: Path | None, on_day: DayHook | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="asr-sim-") as tmp:
        path = database or Path(tmp) / "simulation.db"
        db = Database.open(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate(db)
            return await simulate_in(fleet, usage, db, on_day)
        finally:
            await db.close()


async def simulate_in(
    fleet: Fleet, usage: Usage, db: Database, on_day: DayHook | None = None
) -> dict[str, Any]:
    """The ASR policy's run in `db`, a migrated, empty store; the report."""
    clock = Clock(_at(fleet.start, 0))
    collector = Collector(db, Settings(), clock)
    await _register(fleet, db, clock.now)
    agent = SimAgent(collector)
    for customer in fleet.customers:
        token, _ = await collector.create_token(customer.id, customer.sites[0].id)
        await agent.enroll(token, customer.id)
    world = World.of(fleet)
    log = Log()
    swaps = defaultdict(list)
    for swap in fleet.replacements:
        swaps[fleet.day_index(swap.date)].append((swap.serial, swap.supply))
    extras = defaultdict(list)
    for extra in fleet.extra_orders:
        extras[fleet.day_index(extra.date)].append(extra)
    models = {d.serial: d.model for d in fleet.devices}
    customers = {d.serial: d.customer for d in fleet.devices}
    for day in range(fleet.days):
        today = fleet.date_of(day)
        clock.now = _at(today, 7)
        await _move_along(db, world, log, day, clock.now)
        for key in swaps.get(day, ()):
            world.swap_early(day, key)
        world.live_day(day, usage)
        clock.now = _at(today, 12)
        reachable: dict[str, list[PrinterReading]] = defaultdict(list)  # customer -> readings
        for serial, slots in world.devices.items():
            if usage.reachable[serial][day]:
                reading = agent.read(serial, models[serial], slots, world.page_count(serial))
                reachable[customers[serial]].append(reading)
        for owner, readings in reachable.items():
            log.readings += await agent.push(readings, clock.now, owner)
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
        if on_day is not None:
            await on_day(day, db, clock.now)
    return await _report(fleet, db, world, log, "asr")


async def _register(fleet: Fleet, db: Database, now: datetime) -> None:
    await add_customers(
        db,
        (
            NewCustomer(
                customer.id,
                customer.kind,
                customer.name,
                customer.language,
                tuple((site.id, site.address) for site in customer.sites),
                tuple(store.ContactSpec(c.id, c.email, c.name) for c in customer.contacts),
            )
            for customer in fleet.customers
        ),
        now,
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
    lines: dict[int, list[PlacedLine]] = defaultdict(list)
    for line in await placed_lines(db):
        lines[line.shipment_id].append(line)
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
    outcome = await run_outcome(db)
    kinds, states = outcome.notices, outcome.states
    report = tally(fleet, world, log.orders, policy)
    report["emails"] = {kind: kinds.get(kind, 0) for kind in EMAILS}
    report["emails"]["shipped"] += kinds.get("backorder_shipped", 0)  # R15: shipping emails
    report["readings"] = log.readings
    report["early_replacements_detected"] = [
        {"day": e.at.date().isoformat(), "serial": e.serial, "supply": e.supply_id, **e.detail}
        for e in outcome.early_replacements
    ]
    for serial, entry in report["per_device"].items():
        entry["state"] = states.get(serial, "unknown")
        entry["high_usage"] = serial in outcome.high_usage
    for t in outcome.supplies:
        supply = report["per_device"][t.serial]["supplies"].setdefault(t.supply_id, {})
        supply.update({k: t.figures.get(k) for k in FIGURES})
        supply.update(basis=t.figures.get("basis"), why=t.figures.get("why"))  # issue 14
    # R6: flagged devices are the helpdesk's to supply by hand, which no scenario models.
    report["stockout_device_days_asr_managed"] = sum(
        entry["stockout_days"] for entry in report["per_device"].values() if not entry["high_usage"]
    )
    return report
