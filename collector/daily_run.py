"""The daily replenishment run: lock, read, decide, write; and its schedule in the collector.

Is: `run_plan`, one run for the whole fleet at `now`: under the plan lock (a PostgreSQL
advisory lock, or a lock file beside the SQLite database), so with several collector
processes on one database only one runs at a time and the others return at once; a
scheduled run (`due` given) that finds a run made at or after its due time returns too, so the
daily run is made once a day however far apart the processes' timers fire; the
decisions are made off the event loop; the outcome is written in one transaction, so a run
that stops half-way leaves nothing behind, and running again on the same data places no
second order (the orders placed are in the balance, R12, R13). `schedule` runs it every day
at a set time with APScheduler 3 (and `asr-collector plan --now` on demand).
Is not: the decisions (collector.replenish.daily, the pure core, which this module sits
above with the store) or the SQL (collector.store.plans).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from collector.replenish.daily import daily
from collector.replenish.settings import Rules
from collector.store.database import Database
from collector.store.plans import last_run_at, load_snapshot, save_outcome

log = logging.getLogger(__name__)
PLAN_LOCK = 0x4153520002  # "ASR" + 2; migrations hold + 1


@dataclass(frozen=True)
class RunResult:
    """What one run did, and how long each part took."""

    ran: bool  # False: another process holds the plan lock
    run_id: int | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    read_seconds: float = 0.0
    decide_seconds: float = 0.0
    write_seconds: float = 0.0


async def run_plan(
    db: Database, rules: Rules, now: datetime, due: datetime | None = None
) -> RunResult:
    """Forecast and plan the whole fleet at `now`, once, under the plan lock; with `due` (a
    scheduled run's time), not if a run at or after `due` is stored already."""
    async with db.exclusive(PLAN_LOCK) as held:
        if not held:
            log.info("plan: another collector process is running it")
            return RunResult(ran=False)
        if due is not None and (last := await last_run_at(db)) is not None and last >= due:
            log.info("plan: the run due at %s was made at %s", due.isoformat(), last.isoformat())
            return RunResult(ran=False)
        with paused_gc():
            started = time.perf_counter()
            snapshot = await load_snapshot(db, now)
            read = time.perf_counter()
            outcome = await asyncio.to_thread(daily, snapshot, now, rules)
            decided = time.perf_counter()
            run_id = await save_outcome(db, outcome, now, now)
            written = time.perf_counter()
    log.info("plan run %d at %s: %s", run_id, now.isoformat(), outcome.counts)
    return RunResult(
        ran=True,
        run_id=run_id,
        counts=outcome.counts,
        read_seconds=read - started,
        decide_seconds=decided - read,
        write_seconds=written - decided,
    )


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off for a run, and back on (if it was) after.

    A run builds millions of objects that live until it ends (the snapshot, the tracks, the
    forecasts), none of them in a cycle. With the collector on, every so many allocations it
    walks all of them again: a quarter of the run on a big fleet. Reference counting still
    frees what the run drops; cycles made meanwhile (the event loop's own) wait until after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def schedule(
    db: Database,
    rules: Rules,
    at: str,
    clock: Callable[[], datetime],
    on_result: Callable[[RunResult | None], None] | None = None,
) -> AsyncIOScheduler:
    """A started scheduler that runs the plan every day at `at` (HH:MM, UTC); `on_result`
    hears each run's result (None: it failed)."""
    hour, minute = (int(part) for part in at.split(":"))
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def job() -> None:
        result = None
        try:
            now = clock()
            result = await run_plan(db, rules, now, due_at(now, hour, minute))
        except Exception:  # the schedule's outer guard: log, try again tomorrow
            log.exception("plan run failed")
        if on_result is not None:
            on_result(result)

    scheduler.add_job(
        job,
        CronTrigger(hour=hour, minute=minute, timezone="UTC"),
        id="daily-plan",
        coalesce=True,  # after a sleep or a stop, one run, not one per missed day
        max_instances=1,
        misfire_grace_time=6 * 3600,
    )
    scheduler.start()
    return scheduler


def due_at(now: datetime, hour: int, minute: int) -> datetime:
    """The latest scheduled time (`hour`:`minute`, UTC, daily) at or before `now`."""
    due = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return due if due <= now else due - timedelta(days=1)
