"""The agent's rhythm on APScheduler 3 (AsyncIOScheduler); the only module importing it.

Is: at start, one poll round, then a push at once if the last successful push is older than
the push interval (R2: at least daily). Then polls every `poll_interval` and pushes every
`push_interval`, each jittered (agent.schedule.rhythm). A failed push is retried on its own
timer with exponential backoff and jitter until one succeeds. A run missed because the box
slept, was off or the process was stopped runs once on wake (misfire: no grace limit;
coalesced: several missed runs make one), and the rhythm goes on from where it was. A watch
task compares the clocks every minute: after a suspend, timers run late by the wall clock, so
it wakes the scheduler to run what is due at once.
Is not: the work itself (agent.work: poll and push rounds), nor the timing rules
(agent.schedule), which are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agent.config import ScheduleSection
from agent.schedule import (
    WAKE_CHECK_SECONDS,
    WAKE_TOLERANCE_SECONDS,
    Tick,
    backoff_delay,
    first_push_at,
    rhythm,
    slept_for,
)

log = logging.getLogger(__name__)

POLL_JOB = "poll"
PUSH_JOB = "push"
RETRY_JOB = "push-retry"


class Work(Protocol):
    """What the service runs on its rhythm."""

    async def poll(self) -> None:
        """Read every printer once and spool the readings."""

    async def push(self) -> bool:
        """Deliver the spool to the collector; True if everything due was delivered."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Service:
    """Runs `Work` on APScheduler; `start` in a running loop, `stop` before leaving it."""

    def __init__(
        self,
        work: Work,
        schedule: ScheduleSection,
        clock: Callable[[], datetime] = _utcnow,
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
        wake_check_seconds: float = WAKE_CHECK_SECONDS,
        wake_tolerance_seconds: float = WAKE_TOLERANCE_SECONDS,
    ) -> None:
        self._work = work
        self._schedule = schedule
        self._clock = clock
        self._rand = rand
        self._monotonic = monotonic
        self._wake_check = wake_check_seconds
        self._wake_tolerance = wake_tolerance_seconds
        self.scheduler = AsyncIOScheduler(timezone=timezone.utc)
        self.failures = 0  # pushes failed in a row
        self._pushing: asyncio.Lock | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._watch: asyncio.Task[None] | None = None

    async def start(self, last_push_ok: datetime | None, poll_first: bool = True) -> None:
        """Poll once (unless told not to), then schedule polls and pushes and start."""
        self._pushing = asyncio.Lock()
        if poll_first:
            await self._poll_job()
        s = self._schedule
        now = self._clock()
        base, jitter = rhythm(s.poll_interval_seconds, s.poll_jitter_seconds)
        job: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        self.scheduler.add_job(
            self._poll_job,
            IntervalTrigger(
                seconds=base,
                jitter=jitter or None,
                start_date=now + timedelta(seconds=base),
                timezone=timezone.utc,
            ),
            id=POLL_JOB,
            name="poll printers",
            **job,
        )
        base, jitter = rhythm(s.push_interval_seconds, s.push_jitter_seconds)
        first = first_push_at(last_push_ok, now, timedelta(seconds=s.push_interval_seconds))
        if first <= now:
            log.info("last successful push %s: pushing now", last_push_ok or "never")
        self.scheduler.add_job(
            self._push_job,
            IntervalTrigger(seconds=base, jitter=jitter or None, timezone=timezone.utc),
            id=PUSH_JOB,
            name="push readings",
            next_run_time=first,
            **job,
        )
        self.scheduler.start()
        self._watch = asyncio.create_task(self._watch_clocks(), name="wake-watch")

    async def stop(self, timeout: float) -> None:
        """Stop scheduling, let a running poll or push finish (up to `timeout`), shut down."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if not self.scheduler.running:
            return
        self.scheduler.pause()
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=timeout)
            if late:
                log.warning("stopping while %d job(s) still run: they are cancelled", len(late))
        self.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        if self._running:
            await asyncio.wait(set(self._running), timeout=5)

    def next_run(self, job_id: str) -> datetime | None:
        """When a job runs next (None: not scheduled)."""
        job = self.scheduler.get_job(job_id)
        return job.next_run_time if job is not None else None

    async def _poll_job(self) -> None:
        with self._tracked():
            try:
                await self._work.poll()
            except Exception:  # the loop's outer guard: log, poll again next time
                log.exception("poll round failed")

    async def _push_job(self) -> None:
        assert self._pushing is not None, "start() first"
        if self._pushing.locked():
            log.debug("a push is running already")
            return
        with self._tracked():
            async with self._pushing:
                try:
                    delivered = await self._work.push()
                except Exception:  # the loop's outer guard: log, count it as failed
                    log.exception("push round failed")
                    delivered = False
                self._after_push(delivered)

    def _after_push(self, delivered: bool) -> None:
        if delivered:
            if self.failures:
                log.info("push succeeded after %d failed attempt(s)", self.failures)
            self.failures = 0
            if self.scheduler.get_job(RETRY_JOB) is not None:
                self.scheduler.remove_job(RETRY_JOB)
            return
        self.failures += 1
        s = self._schedule
        delay = backoff_delay(
            self.failures, s.backoff_base_seconds, s.backoff_max_seconds, self._rand
        )
        at = self._clock() + timedelta(seconds=delay)
        log.log(
            logging.INFO if self.failures == 1 else logging.DEBUG,
            "push failed (%d in a row): next try in %.1f s",
            self.failures,
            delay,
        )
        self.scheduler.add_job(
            self._push_job,
            DateTrigger(run_date=at, timezone=timezone.utc),
            id=RETRY_JOB,
            name="retry push",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _watch_clocks(self) -> None:
        previous = Tick(self._clock(), self._monotonic())
        while True:
            await asyncio.sleep(self._wake_check)
            current = Tick(self._clock(), self._monotonic())
            slept = slept_for(previous, current, self._wake_check, self._wake_tolerance)
            previous = current
            if slept:
                log.info("woke up (slept or clock jumped %.0f s): running what is due", slept)
                self.scheduler.wakeup()

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            yield
        finally:
            self._running.discard(task)
