"""The daily run in chunks (issue 16): the same decisions as one whole-fleet run, on SQLite and
on PostgreSQL; two workers share a run and place each order once; a worker that fails half-way
leaves its chunk whole for another.

The fleet is bench/plan.py's (customers with several sites and contacts, tracks, readings,
orders on their way), a few hundred devices.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Connection, select, text, update

from collector.daily_run import run_plan, work_plan
from collector.metrics import Metrics
from collector.replenish.daily import Outcome, Snapshot, daily, fleet_yields
from collector.replenish.settings import Rules
from collector.replenish.track import Track
from collector.store.database import Database
from collector.store.plan_chunks import learned_yields
from collector.store.plan_snapshot import Contacts, load
from collector.store.plans import load_snapshot, save_outcome
from collector.store.schema import (
    device_states,
    notifications,
    orders,
    plan_chunks,
    plan_runs,
    plan_work,
    shipments,
    supply_tracks,
)

DEVICES = 240
BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # bench/plan.py imports its neighbours as top-level modules
    spec = importlib.util.spec_from_file_location("bench_plan", BENCH / "plan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _bench()
NOW: datetime = bench.NOW


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "fleet.db"
    asyncio.run(bench.build_sqlite(path, DEVICES, 1, Rules()))
    return path


@pytest.fixture(scope="module")
def fleet_pg(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database with the fleet, the template of each test's copy."""
    name = f"asr_test_chunks_{uuid.uuid4().hex[:8]}"
    asyncio.run(bench.build_pg(pg_url, name, DEVICES, 1, Rules()))
    try:
        yield name
    finally:
        asyncio.run(bench._pg_admin(pg_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _sqlite(fleet_file: Path, folder: Path, label: str) -> Database:
    path = folder / f"{label}.db"
    shutil.copyfile(fleet_file, path)
    return Database.open(f"sqlite+aiosqlite:///{path}")


@pytest.fixture
async def pg_copies(pg_url: str, fleet_pg: str) -> AsyncIterator[list[str]]:
    """Two fresh copies of the PostgreSQL fleet: their URLs."""
    async with _pg_copies(pg_url, fleet_pg) as urls:
        yield urls


@asynccontextmanager
async def _pg_copies(pg_url: str, fleet_pg: str) -> AsyncIterator[list[str]]:
    names = [f"{fleet_pg}_{n}" for n in range(2)]
    for name in names:
        await bench._pg_admin(pg_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await bench._pg_admin(pg_url, f"CREATE DATABASE {name} TEMPLATE {fleet_pg}")
    try:
        yield [bench._pg_url(pg_url, name) for name in names]
    finally:
        for name in names:
            await bench._pg_admin(pg_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _written(conn: Connection) -> dict[str, Any]:
    """What a run wrote, without ids and times that differ between equal runs."""
    lines = conn.execute(
        select(
            shipments.c.customer_id,
            shipments.c.site_id,
            shipments.c.contact_id,
            orders.c.serial,
            orders.c.supply_id,
            orders.c.sku,
            orders.c.quantity,
            orders.c.reason,
        )
        .join(shipments, shipments.c.id == orders.c.shipment_id)
        .where(shipments.c.placed_at == NOW)
        .order_by(orders.c.serial, orders.c.supply_id)
    ).all()
    mail = conn.execute(
        select(notifications.c.kind, notifications.c.contact_id, notifications.c.payload).where(
            notifications.c.created_at == NOW
        )
    ).all()
    return {
        "lines": [tuple(row) for row in lines],
        "notices": sorted(
            repr((kind, contact, {k: v for k, v in payload.items() if k != "shipment"}))
            for kind, contact, payload in mail  # shipment ids follow the order of writing
        ),
        "states": sorted(tuple(row) for row in conn.execute(select(device_states)).all()),
        "tracks": sorted(
            (row.serial, row.supply_id, repr(row.track), row.balance)
            for row in conn.execute(select(supply_tracks)).all()
        ),
    }


async def _whole_fleet(db: Database) -> dict[str, Any]:
    """The run as it was before chunks: one snapshot, one decision, one transaction."""
    outcome = daily(await load_snapshot(db, NOW), NOW, Rules())
    await save_outcome(db, outcome, NOW, NOW)
    return await db.read(_written)


async def test_a_chunked_run_writes_what_one_whole_fleet_run_writes_sqlite(
    fleet_file: Path, tmp_path: Path
) -> None:
    whole = await _sqlite(fleet_file, tmp_path, "a")
    chunked = await _sqlite(fleet_file, tmp_path, "b")
    try:
        expected = await _whole_fleet(whole)
        assert expected["lines"], "the fleet orders something"
        metrics = Metrics()
        seen: list[tuple[int, int, int, int]] = []

        def progressed(chunks_done: int, chunks: int, groups_done: int, groups: int) -> None:
            seen.append((chunks_done, chunks, groups_done, groups))
            metrics.plan_progressed(chunks_done, chunks, groups_done, groups)

        result = await run_plan(chunked, Rules(), NOW, chunk=7, on_progress=progressed)
        assert result.ran and result.chunks > 20
        chunks, groups = result.counts["chunks"], result.counts["groups"]
        assert [s[0] for s in seen] == list(range(1, chunks + 1))
        assert seen[-1] == (chunks, chunks, groups, groups)
        text_ = metrics.exposition()[0].decode()
        assert f'asr_plan_progress{{of="groups_done"}} {float(groups)}' in text_
        assert await chunked.read(_written) == expected
        assert result.counts["shipments"] == len({row[:3] for row in expected["lines"]})
        again = await run_plan(chunked, Rules(), NOW, due=NOW)  # made already
        assert not again.ran
        rerun = await run_plan(chunked, Rules(), NOW, chunk=50)  # on demand: no second order
        assert rerun.ran and rerun.counts["shipments"] == 0
    finally:
        await whole.close()
        await chunked.close()


async def test_two_workers_place_the_orders_one_places(pg_copies: list[str]) -> None:
    one, two = pg_copies
    db = Database.open(one)
    try:
        alone = await run_plan(db, Rules(), NOW, chunk=9)
        expected = await db.read(_written)
    finally:
        await db.close()
    workers = [Database.open(two) for _ in range(2)]  # two processes' pools
    try:
        results = await asyncio.gather(
            *(
                work_plan(w, Rules(), NOW, chunk=9, worker=f"w{n}", decide=_slow)
                for n, w in enumerate(workers)
            )
        )
        assert all(r.ran for r in results)
        assert sum(r.chunks for r in results) == alone.chunks
        assert all(r.chunks for r in results), "both workers planned some of the run"
        assert await workers[0].read(_written) == expected
        by = await workers[0].read(
            lambda c: c.execute(text("SELECT DISTINCT worker FROM plan_chunks")).scalars().all()
        )
        assert set(by) == {"w0", "w1"}
        late = await work_plan(workers[1], Rules(), NOW)  # the run at NOW is made
        assert not late.ran
    finally:
        for w in workers:
            await w.close()


def _slow(snapshot: Snapshot, now: datetime, rules: Rules) -> Outcome:
    """`daily`, taking a while, as a chunk of a big fleet does: the other worker has time to
    join the run (it looks for it every POLL_SECONDS) before this one plans every chunk."""
    time.sleep(0.05)
    return daily(snapshot, now, rules)


class Failing:
    """`daily`, failing at its `at`th chunk: the worker's process dying half-way."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __call__(self, snapshot: Snapshot, now: datetime, rules: Rules) -> Outcome:
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("the worker died")
        return daily(snapshot, now, rules)


def _state(conn: Connection) -> tuple[int, int, set[str], set[str], bool]:
    done = conn.execute(
        select(plan_chunks.c.after_contact, plan_chunks.c.through_contact).where(
            plan_chunks.c.done_at.is_not(None)
        )
    ).all()
    ordered = {
        row.serial
        for row in conn.execute(
            select(orders.c.serial).join(shipments).where(shipments.c.placed_at == NOW)
        )
    }
    in_done = {
        str(serial)
        for after, through in done
        for serial in conn.execute(Contacts(after, through).devices()).scalars()
    }
    complete = conn.execute(select(plan_work.c.done_at)).scalar_one() is not None
    runs = conn.execute(select(plan_runs.c.id).where(plan_runs.c.as_of == NOW)).all()
    return len(done), len(runs), ordered, in_done, complete


@pytest.fixture(params=["sqlite", "postgresql"])
async def copies(
    request: pytest.FixtureRequest, fleet_file: Path, tmp_path: Path, pg_url: str, fleet_pg: str
) -> AsyncIterator[list[str]]:
    """Two fresh copies of the fleet on each kind of database: their URLs."""
    if request.param == "sqlite":
        urls = []
        for name in ("x.db", "y.db"):
            shutil.copyfile(fleet_file, tmp_path / name)
            urls.append(f"sqlite+aiosqlite:///{tmp_path / name}")
        yield urls
        return
    async with _pg_copies(pg_url, fleet_pg) as urls:
        yield urls


async def test_a_worker_that_fails_half_way_leaves_its_chunk_whole_for_another(
    copies: list[str],
) -> None:
    urls = copies
    reference = Database.open(urls[0])
    try:
        await run_plan(reference, Rules(), NOW, chunk=9)
        expected = await reference.read(_written)
    finally:
        await reference.close()
    first, second = Database.open(urls[1]), Database.open(urls[1])
    try:
        with pytest.raises(RuntimeError, match="the worker died"):
            await work_plan(first, Rules(), NOW, chunk=9, decide=Failing(at=4))
        done, runs, ordered, in_done, complete = await second.read(_state)
        assert done == 3 and runs == 1 and not complete
        assert ordered <= in_done  # nothing of the failed chunk, nor of those after it
        finished = await work_plan(second, Rules(), NOW, chunk=9)  # joins the run at NOW
        assert finished.ran and finished.chunks > 1
        assert await second.read(_written) == expected
        assert (await second.read(_state))[4]
    finally:
        await first.close()
        await second.close()


async def test_a_run_left_incomplete_is_finished_then_the_days_run_is_made(
    fleet_file: Path, tmp_path: Path
) -> None:
    db = await _sqlite(fleet_file, tmp_path, "left")
    try:
        with pytest.raises(RuntimeError, match="the worker died"):
            await run_plan(db, Rules(), NOW, chunk=9, decide=Failing(at=3))
        tomorrow = NOW + timedelta(days=1)
        result = await run_plan(db, Rules(), tomorrow, due=tomorrow - timedelta(hours=1))
        assert result.ran
        runs = await db.read(
            lambda c: c.execute(
                select(plan_runs.c.as_of, plan_work.c.done_at.is_not(None))
                .join(plan_work, plan_work.c.run_id == plan_runs.c.id)
                .order_by(plan_runs.c.id)
            ).all()
        )
        assert [tuple(r) for r in runs] == [(NOW, True), (tomorrow, True)]
    finally:
        await db.close()


STUCK_WORKER = """
import asyncio, sys, time
from datetime import datetime, timedelta
from collector.metrics import Metrics
from collector.daily_run import work_plan
from collector.replenish.daily import daily
from collector.replenish.settings import Rules
from collector.store.database import Database

calls = 0

def decide(snapshot, now, rules):
    global calls
    calls += 1
    if calls == 2:  # the second chunk claimed, its snapshot read: stop here until killed
        print("claimed", flush=True)
        time.sleep(600)
    return daily(snapshot, now, rules)

async def main():
    db = Database.open(sys.argv[1])
    await work_plan(db, Rules(), datetime.fromisoformat(sys.argv[2]), chunk=9, decide=decide)

asyncio.run(main())
"""


async def test_a_worker_killed_mid_chunk_frees_it_and_another_completes_the_run(
    pg_copies: list[str],
) -> None:
    reference = Database.open(pg_copies[0])
    try:
        await run_plan(reference, Rules(), NOW, chunk=9)
        expected = await reference.read(_written)
    finally:
        await reference.close()
    url = pg_copies[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STUCK_WORKER, url, NOW.isoformat(), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"claimed"
    finally:
        proc.kill()  # SIGKILL: no handler runs, the server sees the connection go
        await proc.wait()
    db = Database.open(url)
    try:
        done, runs, ordered, in_done, complete = await db.read(_state)
        assert done == 1 and runs == 1 and not complete
        assert ordered <= in_done
        finished = await asyncio.wait_for(work_plan(db, Rules(), NOW, chunk=9), 120)
        assert finished.ran
        assert await db.read(_written) == expected
        assert (await db.read(_state))[4]
    finally:
        await db.close()


def _learn(conn: Connection) -> None:
    """Give some tracks learned pages per cartridge, as a year of readings would."""
    rows = conn.execute(
        select(supply_tracks.c.serial, supply_tracks.c.supply_id, supply_tracks.c.track)
        .order_by(supply_tracks.c.serial, supply_tracks.c.supply_id)
        .limit(60)
    ).all()
    for n, (serial, supply_id, stored) in enumerate(rows):
        track = Track.from_json(stored)
        track = replace(track, meter=replace(track.meter, yields=(2000 + 10 * n, 2100 + n)))
        conn.execute(
            update(supply_tracks)
            .where(supply_tracks.c.serial == serial, supply_tracks.c.supply_id == supply_id)
            .values(track=track.to_json())
        )


def _decoded(conn: Connection) -> dict[str, Any]:
    """The fleet's yields as the whole-fleet run computes them: from the decoded tracks."""
    snapshot = load(conn, NOW)
    return fleet_yields(
        (s.sku, track.meter.yields)
        for s in snapshot.supplies
        if (track := snapshot.tracks.get((s.serial, s.supply_id))) is not None
    )


async def test_the_first_pass_reads_the_yields_the_decoded_tracks_have(copies: list[str]) -> None:
    db = Database.open(copies[0])
    try:
        async with db.transaction() as conn:
            await conn.run_sync(_learn)
        expected = await db.read(_decoded)
        assert expected, "some part numbers have a fleet figure"
        assert await db.read(learned_yields) == expected
    finally:
        await db.close()
