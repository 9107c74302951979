"""The daily run with two collectors on one database: both have it scheduled at the same
minute, exactly one makes it, and no order is placed twice.

The first test runs the real thing: two `asr-collector serve` processes on one PostgreSQL
database behind nginx, with their wall clocks moved forward by the same few seconds
(libfaketime from Debian's `faketime`; the monotonic clock left alone) so that `plan.at` comes
seconds after they start instead of tomorrow. What fires is each process's own schedule, in
both at the same instant. The readings the run decides from reach the store through nginx,
signed, spread over both processes.
The second test is the case that timing cannot make happen on demand: one process's timer
fires after the other's run has finished (a slow or late process, clocks a little apart).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from collector.daily_run import RunResult, run_plan, schedule
from collector.replenish.settings import Rules
from collector.simulation.agent import SimAgent
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.store.plans import last_run_at
from tests.collector.kit import Agent, Clock, Pki, make_pki
from tests.scaleout.kit import Deployment, create_database, drop_database, pg_rows, scrape
from tests.scaleout.world import DAYS, ORDERED, batches, make_world

LEADS = (8.0, 25.0)  # seconds from starting the collectors to their plan.at


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_database()
    try:
        yield url
    finally:
        await drop_database(url)


def _libfaketime() -> Path:
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail(
            "libfaketime is missing: this test needs Debian's faketime"
            " (apt-get install -y faketime; `make test` installs it)",
            pytrace=False,
        )
    return found[0]


async def _world(url: str, since: datetime) -> tuple[str, SimAgent]:
    db = Database.open(url)
    try:
        await migrate(db)
        return await make_world(db, since)
    finally:
        await db.close()


def _runs(metrics: str, outcome: str) -> int:
    line = f'asr_plan_runs_total{{outcome="{outcome}"}} '
    values = [float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line)]
    return int(values[0]) if values else 0


async def _fired(deployment: Deployment, pki: Pki, timeout: float) -> list[str]:
    """Each collector's metrics, once both have counted their scheduled run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        scraped = [await scrape(p.url, pki) for p in deployment.collectors]
        fired = [sum(_runs(t, o) for o in ("ran", "skipped", "failed")) for t in scraped]
        if all(fired):
            return scraped
        assert loop.time() < deadline, f"the scheduled run did not fire in both: {fired}"
        await asyncio.sleep(0.2)


async def _scheduled(
    directory: Path, pki: Pki, url: str, lead: float
) -> tuple[Deployment, datetime] | None:
    """The two collectors started with their clocks ahead by the same whole seconds, so that
    their plan.at falls `lead` seconds from now; None (stopped again) if they started later."""
    fire = datetime.now(timezone.utc) + timedelta(seconds=lead)
    due = fire.replace(second=0, microsecond=0) + timedelta(minutes=1)
    offset = math.ceil((due - fire).total_seconds())
    deployment = Deployment(
        directory,
        pki,
        url,
        settings=f'[plan]\nenabled = true\nat = "{due:%H:%M}"\n',
        env={
            "LD_PRELOAD": str(_libfaketime()),
            "FAKETIME": f"+{offset}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        },
    )
    await deployment.start()
    if datetime.now(timezone.utc) + timedelta(seconds=offset) < due:
        return deployment, due
    await deployment.stop()  # their schedules already point at tomorrow
    return None


async def test_r12_two_collectors_schedule_the_daily_run_and_it_runs_once(
    tmp_path: Path, pki: Pki, pg_url: str
) -> None:
    since = datetime.now(timezone.utc) - timedelta(days=DAYS, hours=1)
    token, reader = await _world(pg_url, since)
    for lead in LEADS:  # a longer lead when a loaded machine starts them slowly
        started = await _scheduled(tmp_path / f"lead-{lead:.0f}", pki, pg_url, lead)
        if started is not None:
            break
    assert started is not None, f"the collectors took more than {LEADS[-1]} s to start"
    deployment, due = started
    try:
        connector = aiohttp.TCPConnector(ssl=pki.client_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            agent = Agent(http, deployment.url, Clock())
            assert (await agent.enroll(token)).status == 201
            for batch in batches(reader, agent.agent_id, since, agent.clock()):
                reply = await agent.send(batch)
                assert reply.status == 200, reply.body
                assert {r["status"] for r in reply.body["results"]} == {"accepted"}
        metrics = await _fired(deployment, pki, lead + 60)
    finally:
        traffic = await deployment.stop()
    traffic.check()  # the enrollment and the 8 batches went to both, each counted where it went
    assert [_runs(m, "ran") for m in metrics] in ([1, 0], [0, 1]), metrics
    assert [_runs(m, "skipped") for m in metrics] in ([0, 1], [1, 0]), metrics
    assert [_runs(m, "failed") for m in metrics] == [0, 0], metrics
    # The one that ran says how far its run got, after each chunk (issue 16): all done.
    ran = next(m for m in metrics if _runs(m, "ran") == 1)
    progress = {
        row.split('"')[1]: float(row.split()[-1])
        for row in ran.splitlines()
        if row.startswith("asr_plan_progress{")
    }
    assert progress["chunks"] >= 1 and progress["chunks_done"] == progress["chunks"], progress
    assert progress["groups_done"] == progress["groups"] >= 1, progress
    ((run_id, as_of),) = pg_rows(pg_url, "SELECT id, as_of FROM plan_runs")
    assert due <= as_of < due + timedelta(minutes=1)
    assert pg_rows(pg_url, "SELECT COUNT(*), MIN(plan_run_id) FROM shipments") == [(1, run_id)]
    lines = pg_rows(pg_url, "SELECT serial, supply_id FROM orders ORDER BY serial, supply_id")
    assert lines == ORDERED  # each once
    logs = deployment.logs()
    assert sum(f"plan run {run_id} at" in log for log in logs) == 1, logs
    skipped = ("plan: another collector process is running it", "plan: the run due at")
    assert sum(any(line in log for line in skipped) for log in logs) == 1, logs


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'collector.db'}"
        return
    url = await create_database()
    try:
        yield url
    finally:
        await drop_database(url)


async def test_r12_a_timer_that_fires_after_the_others_run_skips_the_days_run(
    any_url: str,
) -> None:
    url = any_url
    due = datetime(2026, 3, 2, 2, 30, tzinfo=timezone.utc)
    first, second = Database.open(url), Database.open(url)  # two processes' pools
    await migrate(first)
    heard: list[RunResult | None] = []
    clocks = {first: due + timedelta(seconds=1), second: due + timedelta(minutes=3)}
    schedulers = [
        schedule(db, Rules(), "02:30", lambda db=db: clocks[db], heard.append)
        for db in (first, second)
    ]
    try:
        for scheduler in schedulers:  # what each process's trigger calls, one after the other
            await scheduler.get_job("daily-plan").func()
        assert [r.ran if r else None for r in heard] == [True, False]
        assert await last_run_at(first) == due + timedelta(seconds=1)
        clocks[second] += timedelta(days=1)  # the next day, the late one is first
        clocks[first] += timedelta(days=1)
        for scheduler in reversed(schedulers):
            await scheduler.get_job("daily-plan").func()
        assert [r.ran if r else None for r in heard] == [True, False, True, False]
        on_demand = await run_plan(first, Rules(), clocks[first])  # `plan --now`: no due time
        assert on_demand.ran
        counts = await first.row_counts()
        assert counts["plan_runs"] == 3
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=False)
        await first.close()
        await second.close()
