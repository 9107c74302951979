"""The daily replenishment run: lock, then chunk by chunk read, decide, write; its schedule.

Is: `run_plan`, one run for the whole fleet at `now`: under the plan lock (a PostgreSQL
advisory lock, or a lock file beside the SQLite database), so with several collector
processes on one database only one coordinates a run at a time and the others return at once;
a scheduled run (`due` given) that finds a run made at or after its due time returns too, so
the daily run is made once a day however far apart the processes' timers fire. The run is
planned in chunks (collector.store.plan_chunks): ranges of supplies contacts, so each R10 group
(customer, site, contact) and each R16 notice (one per contact, naming all its disconnected
devices) is whole in one chunk; the fleet's pages per cartridge by part number are computed
once per run, before the chunks. Each chunk is read, decided off the event loop and written in
one transaction with its mark done: a run that stops half-way leaves whole chunks only, the
next call finishes it (a chunk done is not planned again), and running again on the same data
places no second order (the orders placed are in the balance, R12, R13). Memory is bounded by
a chunk, not the fleet. `work_plan` (`asr-collector plan --worker`) joins the run being made,
or starts the run at `now`, and plans chunks beside other workers on PostgreSQL (each chunk
claimed with FOR UPDATE SKIP LOCKED; a worker that dies frees its chunk). Progress (chunks and
groups done of all) is logged after each chunk. `schedule` runs it every day at a set time
with APScheduler 3 (and `asr-collector plan --now` on demand).
Is not: the decisions (collector.replenish.daily, the pure core, which this module sits
above with the store) or the SQL (collector.store.plans, collector.store.plan_chunks).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from collector.replenish.daily import Outcome, Snapshot, daily
from collector.replenish.settings import Rules
from collector.store.database import Database
from collector.store.plan_chunks import (
    Work,
    claim_and_load,
    current,
    finish,
    learned_yields,
    progress,
    save,
    start,
)
from collector.store.plans import last_run_at

log = logging.getLogger(__name__)
PLAN_LOCK = 0x4153520002  # "ASR" + 2; migrations hold + 1
CHUNK_DEVICES = 2000  # devices per chunk: what one chunk's snapshot holds in memory
POLL_SECONDS = 0.5  # a worker with no chunk to claim looks again this often until the run is done

Decide = Callable[[Snapshot, datetime, Rules], Outcome]
OnProgress = Callable[[int, int, int, int], None]  # chunks done, chunks, groups done, groups


@dataclass(frozen=True)
class RunResult:
    """What one run did (this process's part of it), and how long each part took."""

    ran: bool  # False: another process holds the plan lock, or the run was made already
    run_id: int | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    read_seconds: float = 0.0
    decide_seconds: float = 0.0
    write_seconds: float = 0.0
    chunks: int = 0  # the chunks this process planned


@dataclass
class _Tally:
    chunks: int = 0
    read: float = 0.0
    decide: float = 0.0
    write: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)

    def add(self, counts: dict[str, Any], read: float, decide: float, write: float) -> None:
        self.chunks += 1
        self.read += read
        self.decide += decide
        self.write += write
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value


async def run_plan(
    db: Database,
    rules: Rules,
    now: datetime,
    due: datetime | None = None,
    *,
    chunk: int = CHUNK_DEVICES,
    decide: Decide = daily,
    worker: str | None = None,
    on_progress: OnProgress | None = None,
) -> RunResult:
    """Forecast and plan the whole fleet at `now`, once, under the plan lock, in chunks of
    about `chunk` devices; with `due` (a scheduled run's time), not if a run at or after `due`
    is stored already. A run left incomplete (its process died) is finished first, at its time,
    then the run at `now` is made (the result is the last run's). Workers (`work_plan`) may
    plan some of the chunks meanwhile."""
    async with db.exclusive(PLAN_LOCK) as held:
        if not held:
            log.info("plan: another collector process is running it")
            return RunResult(ran=False)
        while True:
            work = await _open(db, now, due, chunk)
            if work is None:
                return RunResult(ran=False)
            result = await _plan(db, rules, work, decide, worker or _worker(), on_progress)
            if work.as_of >= now:
                return result
            # an earlier run left incomplete, finished now: the run at `now` is still to make


async def work_plan(
    db: Database,
    rules: Rules,
    now: datetime,
    *,
    chunk: int = CHUNK_DEVICES,
    decide: Decide = daily,
    worker: str | None = None,
    on_progress: OnProgress | None = None,
) -> RunResult:
    """`plan --worker`: join the run not complete yet, or start the run at `now` if none is
    made (taking the plan lock only to start it), and plan chunks of it until every chunk is
    done; several workers share one run. Not ran: the run at `now` was made already."""
    while True:
        work = await db.read(current)
        if work is not None:
            break
        async with db.exclusive(PLAN_LOCK) as held:
            if held:
                work = await _open(db, now, now, chunk)
                if work is None:
                    return RunResult(ran=False)
                break
        await asyncio.sleep(POLL_SECONDS)  # another process is starting it: join it then
    return await _plan(db, rules, work, decide, worker or _worker(), on_progress)


async def _open(db: Database, now: datetime, due: datetime | None, size: int) -> Work | None:
    """Under the plan lock: the run not complete yet, else a new run at `now` (None: the run
    due at `due` is made already)."""
    work = await db.read(current)
    if work is not None:
        log.info("plan: finishing run %d of %s", work.run_id, work.as_of.isoformat())
        return work
    if due is not None and (last := await last_run_at(db)) is not None and last >= due:
        log.info("plan: the run due at %s was made at %s", due.isoformat(), last.isoformat())
        return None
    yields = await db.read(learned_yields)  # the whole fleet's, once for the run
    async with db.transaction() as conn:
        work = await conn.run_sync(lambda c: start(c, now, size, yields))
    log.info(
        "plan run %d at %s: %d groups in %d chunks",
        work.run_id,
        now.isoformat(),
        work.groups,
        work.chunks,
    )
    return work


async def _plan(
    db: Database,
    rules: Rules,
    work: Work,
    decide: Decide,
    worker: str,
    on_progress: OnProgress | None,
) -> RunResult:
    """Claim, decide and save chunks of `work` until every chunk of it is done."""
    tally = _Tally()
    counts: dict[str, Any] | None = None
    with paused_gc():
        while True:
            if await _chunk(db, rules, work, decide, worker, tally, on_progress):
                continue
            async with db.transaction() as conn:
                counts = await conn.run_sync(lambda c: finish(c, work))
            if counts is not None:
                log.info("plan run %d at %s: %s", work.run_id, work.as_of.isoformat(), counts)
                break
            if (await db.read(lambda c: progress(c, work.run_id))).chunks_done == work.chunks:
                break  # another worker finished it
            await asyncio.sleep(POLL_SECONDS)  # the chunks left are being planned elsewhere
    return RunResult(
        ran=True,
        run_id=work.run_id,
        counts=tally.counts if counts is None else counts,  # the run's, if this one finished it
        read_seconds=tally.read,
        decide_seconds=tally.decide,
        write_seconds=tally.write,
        chunks=tally.chunks,
    )


async def _chunk(
    db: Database,
    rules: Rules,
    work: Work,
    decide: Decide,
    worker: str,
    tally: _Tally,
    on_progress: OnProgress | None,
) -> bool:
    """Plan one chunk of `work`, all or nothing; False: none is left to claim."""
    started = time.perf_counter()
    if db.dialect == "postgresql":
        # One transaction: the chunk's row stays locked (others skip it) until its outcome is
        # committed; if this process dies, the transaction rolls back and the chunk is free.
        async with db.transaction() as conn:
            claimed = await conn.run_sync(lambda c: claim_and_load(c, work))
            if claimed is None:
                return False
            chunk, snapshot = claimed
            read = time.perf_counter()
            outcome = await asyncio.to_thread(decide, snapshot, work.as_of, rules)
            decided = time.perf_counter()
            saved = await conn.run_sync(lambda c: save(c, outcome, work, chunk, worker))
    else:  # one embedded planner: read in the reader's thread, write in one transaction
        claimed = await db.read(lambda c: claim_and_load(c, work))
        if claimed is None:
            return False
        chunk, snapshot = claimed
        read = time.perf_counter()
        outcome = await asyncio.to_thread(decide, snapshot, work.as_of, rules)
        decided = time.perf_counter()
        async with db.transaction() as conn:
            saved = await conn.run_sync(lambda c: save(c, outcome, work, chunk, worker))
    written = time.perf_counter()
    del snapshot
    if saved:
        tally.add(outcome.counts, read - started, decided - read, written - decided)
        done = await db.read(lambda c: progress(c, work.run_id))
        log.info(
            "plan run %d: chunk %d planned by %s; %d/%d chunks, %d/%d groups done",
            work.run_id,
            chunk.number,
            worker,
            done.chunks_done,
            done.chunks,
            done.groups_done,
            done.groups,
        )
        if on_progress is not None:
            on_progress(done.chunks_done, done.chunks, done.groups_done, done.groups)
    return True


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
    on_progress: OnProgress | None = None,
) -> AsyncIOScheduler:
    """A started scheduler that runs the plan every day at `at` (HH:MM, UTC); `on_result`
    hears each run's result (None: it failed), `on_progress` its progress after each chunk."""
    hour, minute = (int(part) for part in at.split(":"))
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def job() -> None:
        result = None
        try:
            now = clock()
            due = due_at(now, hour, minute)
            result = await run_plan(db, rules, now, due, on_progress=on_progress)
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
