"""A daily run slower than its schedule says so: in the log and in /metrics.

The run is the real one: `schedule` (collector.daily_run) on a real database with a
registered device, started by APScheduler's own trigger path (the job's next run time set to
now), watched by the app's `PlanWatch` as `serve` wires it. A slow run is made slow at the
store boundary: a database handle whose reads wait until the test lets them go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from collector.app import PlanWatch
from collector.daily_run import RunResult, schedule
from collector.metrics import Metrics
from collector.replenish.settings import Rules
from collector.simulation.agent import supply_index
from collector.store import fleet as store
from collector.store.database import Database

START = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)


class Gated:
    """A database handle whose reads wait for `gate`: a run that is slow for the test."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    async def read(self, fn: Callable[..., Any]) -> Any:
        self.waiting.set()
        await self.gate.wait()
        return await self._db.read(fn)


async def _fleet(db: Database) -> None:
    await store.add_customer(
        db,
        "acme",
        "self",
        START,
        sites_=[("milano", "Via Roma 1")],
        contacts_=[store.ContactSpec("anna", "anna@acme.example")],
    )
    supply = store.SupplySpec("black", supply_index(0), "toner", "black", "TN-K", 300.0)
    await store.register(
        db, [store.DeviceSpec("A1", "acme", "milano", "anna", "MFP", (supply,))], START
    )


def _metric(metrics: Metrics, line: str) -> float:
    for text in metrics.exposition()[0].decode().splitlines():
        if text.startswith(line + " "):
            return float(text.split()[-1])
    raise AssertionError(f"{line} not in the exposition")


async def _until(done: Callable[[], bool] | Callable[[], Awaitable[bool]]) -> None:
    for _ in range(500):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


def _fire_now(scheduler: Any) -> None:
    """What the cron trigger does at `plan.at`: the job's next run time is now."""
    scheduler.modify_job("daily-plan", next_run_time=datetime.now(timezone.utc))


async def test_a_run_past_its_budget_is_logged_and_counted(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await _fleet(db)
    metrics = Metrics()
    results: list[RunResult | None] = []
    watch = PlanWatch(metrics, budget=0.001)  # any real run takes longer than a millisecond

    def finished(result: RunResult | None) -> None:
        watch.finished(result)
        results.append(result)

    caplog.set_level(logging.INFO)
    scheduler = schedule(db, Rules(), "02:30", lambda: START, finished)
    watch.attach(scheduler)
    try:
        _fire_now(scheduler)
        await _until(lambda: bool(results))
    finally:
        watch.stop()
        scheduler.shutdown(wait=False)
    [result] = results
    assert result is not None and result.ran and result.counts["supplies"] == 1
    assert _metric(metrics, 'asr_plan_overruns_total{kind="budget"}') == 1
    assert _metric(metrics, 'asr_plan_overruns_total{kind="schedule"}') == 0
    assert _metric(metrics, "asr_plan_budget_seconds") == 0.001
    assert _metric(metrics, "asr_plan_last_seconds") > 0.001
    assert _metric(metrics, 'asr_plan_runs_total{outcome="ran"}') == 1
    [line] = [r for r in caplog.records if "over its budget" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert f"run {result.run_id} took" in line.getMessage()
    assert "budget_minutes" in line.getMessage()


async def test_a_run_within_its_budget_says_nothing(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await _fleet(db)
    metrics = Metrics()
    results: list[RunResult | None] = []
    watch = PlanWatch(metrics, budget=3600)

    def finished(result: RunResult | None) -> None:
        watch.finished(result)
        results.append(result)

    scheduler = schedule(db, Rules(), "02:30", lambda: START, finished)
    watch.attach(scheduler)
    try:
        _fire_now(scheduler)
        await _until(lambda: bool(results))
    finally:
        watch.stop()
        scheduler.shutdown(wait=False)
    assert _metric(metrics, 'asr_plan_overruns_total{kind="budget"}') == 0
    assert 0 < _metric(metrics, "asr_plan_last_seconds") < 3600
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_run_still_going_at_the_next_time_says_so_and_that_run_is_skipped(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Past its budget while it goes (said once), then the next scheduled time comes: no
    second run beside it, a warning and a count instead; the run itself completes."""
    await _fleet(db)
    gated = Gated(db)
    metrics = Metrics()
    results: list[RunResult | None] = []
    watch = PlanWatch(metrics, budget=0.05)

    def finished(result: RunResult | None) -> None:
        watch.finished(result)
        results.append(result)

    caplog.set_level(logging.INFO)
    scheduler = schedule(gated, Rules(), "02:30", lambda: START, finished)  # type: ignore[arg-type]
    watch.attach(scheduler)
    try:
        _fire_now(scheduler)
        await asyncio.wait_for(gated.waiting.wait(), 5)  # the run is reading, held
        await _until(lambda: _metric(metrics, 'asr_plan_overruns_total{kind="budget"}') == 1)
        going = [r for r in caplog.records if "has been going for" in r.getMessage()]
        assert len(going) == 1 and going[0].levelno == logging.WARNING
        _fire_now(scheduler)  # the next day's time, the run still held
        await _until(lambda: _metric(metrics, 'asr_plan_overruns_total{kind="schedule"}') == 1)
        assert not results  # no second run started, none finished
        gated.gate.set()
        await _until(lambda: bool(results))
        await asyncio.sleep(0.1)  # nothing else comes
    finally:
        watch.stop()
        scheduler.shutdown(wait=False)
    [result] = results
    assert result is not None and result.ran
    assert _metric(metrics, 'asr_plan_overruns_total{kind="budget"}') == 1  # counted once
    assert _metric(metrics, 'asr_plan_runs_total{outcome="ran"}') == 1
    [skipped] = [r for r in caplog.records if "is skipped" in r.getMessage()]
    assert skipped.levelno == logging.WARNING
    assert "still going" in skipped.getMessage()
    ended = [r for r in caplog.records if "over its budget" in r.getMessage()]
    assert len(ended) == 1
    next_time = scheduler.get_job("daily-plan")
    assert next_time is None or next_time.next_run_time > datetime.now(timezone.utc) + timedelta(
        hours=1
    )
