"""The daily run on both databases: orders once, under one lock, all or nothing (R4 to R16).

Readings reach the store through the real ingest (signed batches from an enrolled agent);
the run is the one `serve` schedules and `asr-collector plan --now` starts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from collector.daily_run import PLAN_LOCK, RunResult, run_plan, schedule
from collector.errors import InvalidRequest
from collector.metrics import Metrics
from collector.replenish.daily import daily
from collector.replenish.planner import Group, Line, Shipment
from collector.replenish.settings import Rules
from collector.service import Collector, Settings
from collector.simulation.agent import SimAgent, supply_index
from collector.simulation.contract import SupplySpec as SimSupply
from collector.simulation.world import Slot
from collector.store import fleet as store
from collector.store.database import Database
from collector.store.plans import load_snapshot, save_outcome
from collector.store.schema import (
    device_states,
    notifications,
    orders,
    plan_runs,
    supply_tracks,
)

START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
BLACK = SimSupply("black", "toner", "black", "TN-K", 300.0, 300.0)
WASTE = SimSupply("waste", "waste", None, "WT-1", 40.0, 20.0)  # 20 days of room


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    """A registered customer site with devices, and an agent that reads them every day."""

    db: Database
    clock: Clock
    agent: SimAgent
    slots: dict[str, list[Slot]]

    async def days(self, count: int, grams: float = 10.0, skip: tuple[str, ...] = ()) -> None:
        """`count` days: each device prints `grams` of black a day, read at noon."""
        for _ in range(count):
            self.clock.now += timedelta(days=1)
            for slots in self.slots.values():
                slots[0].use(grams)
                slots[1].use(grams * 0.1)
            readings = [
                self.agent.read(serial, "MFP", slots)
                for serial, slots in self.slots.items()
                if serial not in skip
            ]
            await self.agent.push(readings, self.clock.now, "acme")

    async def plan(self) -> Any:
        return await run_plan(self.db, Rules(), self.clock.now + timedelta(hours=11))


async def _site(db: Database, kind: str = "self", serials: tuple[str, ...] = ("A1", "A2")) -> Site:
    clock = Clock(START.replace(hour=12))
    collector = Collector(db, Settings(), clock)
    await store.add_customer(
        db,
        "acme",
        kind,
        clock.now,
        sites_=[("milano", "Via Roma 1")],
        contacts_=[store.ContactSpec("anna", "anna@acme.example")],
    )
    supplies = tuple(
        store.SupplySpec(s.id, supply_index(i), s.kind, s.colour, s.sku, s.capacity_grams)
        for i, s in enumerate((BLACK, WASTE))
    )
    await store.register(
        db,
        [store.DeviceSpec(s, "acme", "milano", "anna", "MFP", supplies) for s in serials],
        clock.now,
    )
    agent = SimAgent(collector)
    token, _ = await collector.create_token("acme", "milano")
    await agent.enroll(token, "acme")
    # A2's cartridge is fuller: A1 reaches the trigger first.
    slots = {
        serial: [Slot(BLACK, 220.0 if i == 0 else 300.0), Slot(WASTE, 20.0)]
        for i, serial in enumerate(serials)
    }
    return Site(db, clock, agent, slots)


async def _count(db: Database, table: Any) -> int:
    return await db.read(lambda c: c.execute(select(func.count()).select_from(table)).scalar_one())


async def _orders(db: Database) -> list[Any]:
    query = select(orders.c.serial, orders.c.supply_id, orders.c.quantity, orders.c.reason)
    return await db.read(lambda c: list(c.execute(query.order_by(orders.c.id))))


async def test_r8_r10_r11_one_shipment_then_a_rerun_places_nothing(db: Database) -> None:
    """R8 at the trigger, R10 the other device joins, R11 waste with black; R12: run twice."""
    site = await _site(db)
    await site.days(8)  # 10 g/day: A1 has 140 g (14 days), A2 220 g (22 days)
    first = await site.plan()
    assert first.ran and first.counts["shipments"] == 1
    placed = await _orders(db)
    assert [(o.serial, o.supply_id, o.reason) for o in placed] == [
        ("A1", "black", "trigger"),
        ("A1", "waste", "waste-with-black"),
        ("A2", "black", "consolidated"),
        ("A2", "waste", "waste-with-black"),
    ]
    assert all(o.quantity == 1 for o in placed)  # R9: 30 days of 10 g/day is one 300 g
    again = await site.plan()  # same data, same time: the need is covered
    assert again.ran and again.counts["shipments"] == 0
    assert await _orders(db) == placed
    assert await _count(db, plan_runs) == 2
    await site.days(3)
    assert (await site.plan()).counts["shipments"] == 0  # R12: still covered days later
    query = select(supply_tracks.c.serial, supply_tracks.c.balance)
    black = query.where(supply_tracks.c.supply_id == "black")
    balances = await db.read(lambda c: dict(c.execute(black).all()))
    assert balances == {"A1": 1, "A2": 1}  # R13: shipped, not installed
    kinds = await db.read(lambda c: list(c.execute(select(notifications.c.kind)).scalars()))
    assert kinds.count("registered") == 2 and kinds.count("order_placed") == 1  # R4, R15


async def test_a_run_rewrites_only_what_changed_and_runs_out_at_stays_true(db: Database) -> None:
    """Tracks and states without new readings or orders are left as they are; the time the
    stock runs out (R17) stays right while they are."""
    site = await _site(db, serials=("A1",))
    await site.days(5)  # 10 g/day: A1 has 170 g, 17 days, so the first run orders (R8)
    first = await site.plan()
    assert first.counts["tracks_written"] == 2 and first.counts["shipments"] == 1
    query = select(
        supply_tracks.c.supply_id,
        supply_tracks.c.runs_out_at,
        supply_tracks.c.updated_at,
        supply_tracks.c.track,
    )

    async def rows() -> dict[str, Any]:
        return await db.read(lambda c: {r.supply_id: r for r in c.execute(query)})

    before = await rows()
    # Stock: 170 g installed + 300 g shipped at 10 g/day: 47 days after the last reading.
    runs_out = site.clock.now + timedelta(days=47)
    assert abs(before["black"].runs_out_at - runs_out) < timedelta(hours=1)
    states = await db.read(lambda c: list(c.execute(select(device_states))))
    site.clock.now += timedelta(days=2)  # no readings for two days: nothing changed
    second = await site.plan()
    assert second.counts["tracks_written"] == 0 and second.counts["shipments"] == 0
    assert await rows() == before  # same rows: the stock still runs out then
    assert await db.read(lambda c: list(c.execute(select(device_states)))) == states
    await site.days(1)  # a reading: both tracks move on
    third = await site.plan()
    assert third.counts["tracks_written"] == 2
    after = await rows()
    assert after["black"].updated_at > before["black"].updated_at
    assert after["black"].track["last_at"] > before["black"].track["last_at"]


async def test_only_one_process_runs_the_plan_at_a_time(db_url: str, db: Database) -> None:
    """With two handles on one database, the plan lock lets one run; the other returns."""
    site = await _site(db)
    await site.days(8)
    other = Database.open(db_url)
    try:
        async with other.exclusive(PLAN_LOCK) as held:
            assert held
            blocked = await site.plan()
            assert not blocked.ran
            assert await _count(db, plan_runs) == 0
        together = await asyncio.gather(
            run_plan(db, Rules(), site.clock.now + timedelta(hours=11)),
            run_plan(other, Rules(), site.clock.now + timedelta(hours=11)),
        )
    finally:
        await other.close()
    assert any(result.ran for result in together)
    assert len(await _orders(db)) == 4  # one shipment's lines, whichever process ran


async def test_a_run_that_fails_half_way_writes_nothing(db: Database) -> None:
    """The run's outcome is one transaction: a failure after some rows leaves no trace."""
    site = await _site(db)
    await site.days(8)
    now = site.clock.now + timedelta(hours=11)
    outcome = daily(await load_snapshot(db, now), now, Rules())
    assert outcome.shipments
    bad = Line("NOT-REGISTERED", "black", "TN-K", 1, "trigger", {})
    broken = replace(outcome.shipments[-1], shipment=Shipment(Group("acme", "1", "1"), (bad,)))
    outcome.shipments.append(broken)
    before = await db.row_counts()
    with pytest.raises(Exception, match="(?i)foreign key|violates"):
        await save_outcome(db, outcome, now, now)
    assert await db.row_counts() == before
    assert (await site.plan()).counts["shipments"] == 1  # the next run does it all


async def test_r14_extra_order_counts_in_the_balance(db: Database) -> None:
    """R14: an extra order recorded by the helpdesk keeps ASR from ordering again."""
    site = await _site(db, serials=("A1",))
    await site.days(4)
    await store.record_extra_order(db, "A1", "black", 2, site.clock.now, note="big job")
    await site.days(4)  # A1 at 140 g: 14 days, but 2 extra cartridges are on their way
    result = await site.plan()
    assert result.counts["shipments"] == 0
    assert [(o.supply_id, o.quantity, o.reason) for o in await _orders(db)] == [
        ("black", 2, "extra"),
        ("waste", 2, "waste-with-black"),  # R11: with each black toner ordered
    ]
    uncounted = await db.read(
        lambda c: c.execute(
            select(func.count()).select_from(orders).where(orders.c.counted_at.is_(None))
        ).scalar_one()
    )
    assert uncounted == 0
    with pytest.raises(InvalidRequest, match="no registered supply 'drum'"):
        await store.record_extra_order(db, "A1", "drum", 1, site.clock.now)


async def test_r16_disconnected_devices_are_reported_once_then_followed_up(db: Database) -> None:
    """R16: a device silent for a week is disconnected; MPS customers' helpdesk is told."""
    site = await _site(db, kind="mps")
    await site.days(3)
    for _ in range(10):
        await site.days(1, skip=("A2",))
        await site.plan()
    query = select(device_states.c.serial, device_states.c.state)
    states = await db.read(lambda c: dict(c.execute(query).all()))
    assert states["A2"] == "disconnected" and states["A1"] != "disconnected"
    rows = await db.read(
        lambda c: list(
            c.execute(
                select(
                    notifications.c.kind, notifications.c.recipient, notifications.c.payload
                ).where(notifications.c.kind.like("disconnected%"))
            )
        )
    )
    assert [(r.kind, r.recipient, r.payload["serials"]) for r in rows] == [
        ("disconnected", "helpdesk", ["A2"])
    ]
    for _ in range(20):
        await site.days(1, skip=("A2",))
        await site.plan()
    kinds = await db.read(lambda c: list(c.execute(select(notifications.c.kind)).scalars()))
    assert kinds.count("disconnected") == 1 and kinds.count("disconnected_followup") == 1
    await site.days(1)  # A2 answers again: reconnected, ASR resumes
    await site.plan()
    state = await db.read(
        lambda c: c.execute(
            select(device_states.c.state).where(device_states.c.serial == "A2")
        ).scalar_one()
    )
    assert state != "disconnected"


async def test_r5_only_toner_ink_and_waste_are_registered(db: Database) -> None:
    """R5: drums, fusers and kits stay outside ASR: registering one is refused."""
    await _site(db)
    drum = store.SupplySpec("drum", "1.9", "drum", None, "DR-1")
    device = store.DeviceSpec("A3", "acme", "milano", "anna", "MFP", (drum,))
    before = await db.row_counts()
    with pytest.raises(InvalidRequest, match="outside ASR"):  # R5
        await store.register(db, [device], START)
    assert await db.row_counts() == before


def test_plan_now_from_the_command_line(tmp_path: Path) -> None:
    """`asr-collector plan --now` runs the daily job once on the configured database."""
    state = tmp_path / "state"
    config = tmp_path / "collector.toml"
    config.write_text(f'[collector]\nstate_dir = "{state}"\n')
    run = subprocess.run(
        [sys.executable, "-m", "collector.cli", "plan", "--now", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["run"] == 1 and out["supplies"] == 0 and out["shipments"] == 0
    assert set(out["seconds"]) == {"read", "decide", "write"}
    assert (state / "collector.db").exists()
    worker = subprocess.run(  # issue 16: joins the run being made, or makes the run now
        [sys.executable, "-m", "collector.cli", "plan", "--worker", "--chunk", "50"]
        + ["--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr
    out = json.loads(worker.stdout)
    assert out["run"] == 2 and out["chunks_planned_here"] == 1 and out["chunks"] == 1


async def test_the_schedule_reports_each_run_to_the_metrics(db: Database) -> None:
    metrics = Metrics()
    heard: list[RunResult | None] = []

    def observe(result: RunResult | None) -> None:
        heard.append(result)
        if result is not None and result.ran:
            seconds = result.read_seconds + result.decide_seconds + result.write_seconds
            metrics.plan_ran(seconds, result.counts)

    scheduler = schedule(db, Rules(), "02:30", lambda: START, observe)
    try:
        await scheduler.get_job("daily-plan").func()  # what the trigger calls at 02:30
    finally:
        scheduler.shutdown(wait=False)
    [result] = heard
    assert result is not None and result.ran and result.run_id is not None
    text = metrics.exposition()[0].decode()
    assert "asr_plan_seconds_count 1.0" in text
    assert 'asr_orders_total{kind="shipments"}' in text
